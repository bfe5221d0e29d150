"""The doc checkers catch what they are for: a renamed flag, key, script option, import or
keyword argument, a malformed block or marker, and a block that fails when it runs."""
from __future__ import annotations

import pytest
from check_params import check_yaml
from check_python import check_python
from check_shell import check_shell, probe_scripts
from extract import Block, extract
from run_block import doc_env, run


def _shell(text: str, kind: str = "parse-only", probe=lambda s, a: "") -> list[str]:
    return check_shell(Block("doc.md", 10, "shell", text, kind, "test"), probe)


@pytest.mark.parametrize("text, expected", [
    ("symile-data train --datset-dir D --model m3 --loss symile --out R", "--datset-dir"),
    ("symile-data train --dataset D --model m3 --loss symile --out R", "--dataset"),  # prefix
    ("symile-data train --dataset-dir D --model m4 --loss symile --out R", "m4"),
    ("symile-data --set m3_samples.sed=3 m3 samples", "unknown key(s) sed"),
    ("symile-data --set m3_sample.seed=3 m3 samples", "no params section 'm3_sample'"),
    ("symile-data --set m3_samples.seed=three m3 samples", "m3_samples.seed: expected"),
    ("symile-data m3 samples --params params-demo.yaml", "params-demo.yaml: no such file"),
    ("symile-data", "no subcommand"),
    ("torchrun --nproc 2 -m symile_data.cli train --dataset-dir D", "torchrun"),
    (("torchrun --nproc_per_node 2 -m symile_data.cli train --dataset-dir D --model m3 "
      "--loss symile --out R --epochs 3"), "--epochs"),
    ("python -m torch.distributed.run -m symile_data.cli evaluate --run R", "--run"),
    ("dvc repro no_such_stage", "neither a stage"),
    ("dvc repro --no-such-flag", "dvc repro"),
    ("dask worker tcp://h:8786 --nworker 1", "--nworker"),
    ("cp params-nope.yaml params.yaml", "no such file params-nope.yaml"),
    ("./no-such.sh", "not an executable file"),
    ("make all", "no check for this command"),
    ("python bench/no_such.py --x", "no such script"),
])
def test_shell_problems(text, expected):
    problems = _shell(text)
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith("doc.md:10: ")


def test_shell_fine_and_lines():
    assert _shell("symile-data --help\n./install.sh && . .venv/bin/activate && dvc repro\n"
                  "cp params.yaml p.yaml && cp p.yaml params.yaml\n"
                  "OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m pytest -q") == []
    problems = _shell("symile-data validate data/\n\nsymile-data train \\\n  --bogus 1")
    assert len(problems) == 1 and problems[0].startswith("doc.md:12: ")


def test_usage_alternatives_each_checked():
    ok = "symile-data train --dataset-dir DIR --model {xor,m3,mimic} --loss {symile,clip} " \
         "--out RUN\n    [--device cuda|cpu]"
    assert _shell(ok, "usage") == []
    problems = _shell(ok.replace("{symile,clip}", "{symile,clap}"), "usage")
    assert len(problems) == 1 and "clap" in problems[0]


def test_script_flags_checked_by_their_own_parser():
    calls = [("pipelines/m3_samples.py", ("--out", "x")),
             ("pipelines/m3_samples.py", ("--ou", "x")),                # no abbreviations
             ("bench/scale.py", ("--sizes", "xs", "--work", "w")),
             ("bench/scale.py", ("--size", "xs")),       # parse_known_args would ignore it
             ("bench/loss.py", ("--help",))]
    results = probe_scripts([(s, list(a)) for s, a in calls])
    assert [bool(results[c]) for c in calls] == [False, True, False, True, False]
    assert "--size xs" in results[calls[3]]
    problems = _shell("nice -n 10 python bench/scale.py --size xs",
                      probe=lambda s, a: results[s, tuple(a)])
    assert problems == [f"doc.md:10: python bench/scale.py --size xs: {results[calls[3]]}"]


def _py(text: str) -> list[str]:
    return check_python(Block("doc.md", 5, "python", text, "parse-only", "test"))


def test_python_problems():
    assert _py("from symile_data.io.reader import ParquetIterabel") == \
        ["doc.md:5: symile_data.io.reader has no ParquetIterabel"]
    assert _py("import os\nfrom symile_data.nope import x") == \
        ["doc.md:6: No module named 'symile_data.nope'"]
    assert _py("from symile_data.io.parquet import ShardSpec\n\nShardSpec(target_bytes=1)") \
        == ["doc.md:7: ShardSpec() has no parameter 'target_bytes'"]
    assert _py("x = {1: 2, ...}") == ["doc.md:5: ':' expected after dictionary key"]
    assert _py("from symile_data.<domain>.cli import FOO\nspec = ShardSpec(a=...)") == []


def _yaml(text: str) -> list[str]:
    return check_yaml(Block("doc.md", 3, "yaml", text))


def test_yaml_problems():
    assert _yaml("m3_images: {resize: 128, n_workers: 4}") == []
    assert "unknown key(s) rezise" in _yaml("m3_images: {rezise: 128}")[0]
    assert "no params section 'm3_image'" in _yaml("m3_image: {resize: 128}")[0]
    assert "m3_images.resize: expected" in _yaml("m3_images: {resize: big}")[0]
    problems = _yaml("m3_clips: {engine: espeak-ng}\n#   or engine: gtts (online), throtle_s: 1")
    assert problems == ["doc.md:4 (comment): m3_clips has no key(s) throtle_s"]


def test_extract_blocks_and_marker_problems(tmp_path):
    (tmp_path / "docs").mkdir()
    md = tmp_path / "docs" / "x.md"
    md.write_text("\n".join([
        "<!-- doctest: needs-gpu 8 GPUs -->", "```bash", "torchrun x", "```",    # 1-4
        "```", "no language", "```",                                             # 5-7
        "<!-- doctest: skip-it why -->", "```bash", "a", "```",                  # 8-11
        "<!-- doctest: parse-only -->", "```bash", "a", "```",                   # 12-15
        "<!-- doctest: usage -->", "", "```bash", "a", "```",                    # 16-20
        "<!-- doctest: parse-only why -->", "```text", "tree", "```",            # 21-24
        "```python", "print(1)", "```"]))                                        # 25-27
    blocks, problems = extract(md, tmp_path)
    assert [(b.line, b.lang, b.kind, b.reason) for b in blocks] == [
        (3, "shell", "needs-gpu", "8 GPUs"), (19, "shell", "run", ""),
        (26, "python", "run", "")]
    assert problems == [
        "docs/x.md:5: fence language '': use one of bash, sh, python, yaml, text",
        ("docs/x.md:9: unknown doctest kind 'skip-it': use one of needs-data, needs-gpu, "
         "parse-only, usage"),
        "docs/x.md:13: doctest parse-only needs a reason",
        "docs/x.md:16: doctest marker not directly before a fence",
        "docs/x.md:22: a text block takes no doctest marker"]


def test_run_names_the_failing_doc_line(tmp_path):
    env = doc_env(tmp_path)
    shell = Block("doc.md", 20, "shell", "true\n# note\nsymile-data validate no/such/dir\ntrue")
    failure = run(shell, tmp_path, env)
    assert failure.startswith("doc.md:22: `symile-data validate no/such/dir` exited with 2")
    py = Block("doc.md", 40, "python", "x = 1\nraise SystemExit(x / 0)")
    failure = run(py, tmp_path, env)
    assert failure.startswith("doc.md:40: python block exited with 1") and "line 41" in failure
    assert run(Block("doc.md", 1, "python", "import symile_data"), tmp_path, env) == ""
