"""Run the stages of the project's dvc.yaml in-process, in file order, in a work directory.

A test helper (not DVC): it expands ``matrix`` stages (cartesian product, DVC's ``name@a-b``
naming), interpolates ``${section.key}`` from the work dir's params.yaml and ``${item.key}``,
and calls ``main(argv)`` of each ``python pipelines/X.py ...`` command, so the real wiring of
dvc.yaml (paths, flags, sections) is exercised without a process per stage. It writes
``.chain/{stage}.started`` before and ``.chain/{stage}.done`` after each stage; with
``E2E_KILL_AT=STAGE:N`` it SIGKILLs itself inside the N-th Parquet shard write of STAGE. Usage: ``python e2e_chain.py REPO WORKDIR [--until STAGE]``.
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import re
import shlex
import signal
import sys
from pathlib import Path

import yaml

VAR = re.compile(r"\$\{([^}]+)\}")
REPO = Path(__file__).resolve().parents[2]

# section -> overrides; everything else stays as in params.yaml (the demo)
TOY = {
    "xor_data": {"ps": [0.0, 1.0], "n_train": 200, "n_val": 50, "n_test": 64},
    "m3_demo": {"images_per_class": 2, "image_size": 32},
    "m3_translations": {"languages": ["en", "el"],
                        "classes": ["n01443537", "n01514859", "n02129604", "n07753592"]},
    "m3_images": {"resize": 32, "scheduler": "synchronous", "n_workers": 1},
    "m3_clips": {"languages": ["en", "el"], "max_clips_per_lang": 2, "n_workers": 1},
    "m3_samples": {"custom_sizes": {"demo": [96, 32, 32]}},
    "mimic_synth": {"admissions": 90, "cxr_height": 336, "cxr_width": 320},
    "mimic_cohort": {"ecg_check_threads": 1, "train_size": 0.5, "val_size": 0.25},
    "features_m3": {"batch_size_image": 16, "batch_size_audio": 4},
    "xor_train": {"ps": [0.0, 1.0], "epochs": 2, "batch_size": 100},
    "xor_eval": {"bootstrap_resamples": 3},
    "m3_train": {"text_model": "data/models/tiny/xlm-roberta", "d": 16, "epochs": 1,
                 "batch_size": 32, "num_workers": 0, "torch_threads": 1},
    "m3_missing_train": {"text_model": "data/models/tiny/xlm-roberta", "d": 16, "epochs": 1,
                         "batch_size": 32, "num_workers": 0, "torch_threads": 1},
    "m3_eval": {"bootstrap_resamples": 3},
    "mimic_train": {"d": 16, "epochs": 1, "batch_size": 16, "num_workers": 0,
                    "torch_threads": 1, "cnn_width": 4, "cxr_pool": 8, "ecg_pool": 8,
                    "cxr_encoder": "resnet18"},
    "mimic_eval": {"bootstrap_resamples": 3},
    "m3_missing": {"ps": [0.5]},
}
# params that name repository files: made absolute so that stages run in any work dir
REPO_PATHS = {("m3_demo", "translations"), ("m3_translations", "path"),
              ("m3_clips", "sentences")}


def toy_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TOY.items():
        params[section].update(values)
    for section, key in REPO_PATHS:
        params[section][key] = str(REPO / params[section][key])
    return params




def _lookup(path: str, scopes: dict) -> object:
    value: object = scopes
    for part in path.split("."):
        value = value[part]  # type: ignore[index]
    return value


def _interp(text: str, scopes: dict) -> str:
    return VAR.sub(lambda m: str(_lookup(m.group(1).strip(), scopes)), text)


def resolve_stages(dvc_yaml: Path, params: dict) -> list[tuple[str, list[str]]]:
    """[(stage name, argv of ``python ...``)] in dvc.yaml order, matrices expanded."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    out = []
    for name, st in stages.items():
        matrix = st.get("matrix")
        combos = [({}, name)]
        if matrix:
            axes = {k: (_lookup(v[2:-1], params) if isinstance(v, str) else v)
                    for k, v in matrix.items()}
            combos = [(dict(zip(axes, vals)), f"{name}@" + "-".join(map(str, vals)))
                      for vals in itertools.product(*axes.values())]
        for item, full in combos:
            cmd = _interp(" ".join(st["cmd"].split()), {**params, "item": item})
            out.append((full, shlex.split(cmd)))
    return out


def _call(repo: Path, argv: list[str]) -> int:
    if argv[0] != "python" or not argv[1].startswith("pipelines/"):
        raise ValueError(f"unexpected stage command {argv}")
    spec = importlib.util.spec_from_file_location("stage_" + Path(argv[1]).stem,
                                                  repo / argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.main(argv[2:])


def _arm_kill(spec: str | None, stage: str) -> None:
    """``E2E_KILL_AT=STAGE:N``: SIGKILL this process inside the N-th Parquet write of STAGE,
    after the bytes reach the temporary file and before its rename and done-marker."""
    if not spec or spec.rsplit(":", 1)[0] != stage:
        return
    import pyarrow.parquet as pq
    real, left = pq.write_table, [int(spec.rsplit(":", 1)[1])]

    def write_then_die(*args, **kwargs):
        real(*args, **kwargs)
        left[0] -= 1
        if left[0] == 0:
            os.kill(os.getpid(), signal.SIGKILL)
    pq.write_table = write_then_die


def run_chain(repo: str | Path, workdir: str | Path, until: str | None = None) -> list[str]:
    """Run every stage (up to and including ``until``) with cwd = workdir; returns names."""
    repo, workdir = Path(repo).resolve(), Path(workdir).resolve()
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    marks = workdir / ".chain"
    marks.mkdir(exist_ok=True)
    ran = []
    old = os.getcwd()
    os.chdir(workdir)
    try:
        for name, argv in resolve_stages(repo / "dvc.yaml", params):
            (marks / f"{name}.started").touch()
            _arm_kill(os.environ.get("E2E_KILL_AT"), name)
            rc = _call(repo, argv)
            if rc:
                raise RuntimeError(f"stage {name} exited with {rc}")
            (marks / f"{name}.done").touch()
            ran.append(name)
            if until is not None and name.split("@")[0] == until and all(
                    n.split("@")[0] != until for n, _ in
                    resolve_stages(repo / "dvc.yaml", params)[len(ran):]):
                break
    finally:
        os.chdir(old)
    return ran


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("repo")
    ap.add_argument("workdir")
    ap.add_argument("--until", default=None, help="last stage (all its matrix items)")
    a = ap.parse_args()
    run_chain(a.repo, a.workdir, a.until)
    sys.exit(0)
