"""Docs are tests: every fenced block of README.md and docs/*.md is parse-checked (flags
against the real parsers, params keys against the section dataclasses, imports and keyword
arguments against the code), and every block without a doctest marker runs against the
session's toy chain (a fresh copy of its work dir per block). Markers: tests/docs/extract.py
and docs/ARCHITECTURE.md ("Docs are tests")."""
from __future__ import annotations

import shutil

import pytest
from check_params import check_yaml
from check_python import check_python
from check_shell import check_shell, probe_scripts, script_calls
from extract import all_blocks
from run_block import doc_env, run, workdir_for

BLOCKS, PROBLEMS = all_blocks()
RUNS = [b for b in BLOCKS if b.runs and b.lang in ("shell", "python")]


@pytest.fixture(scope="module")
def probe():
    results = probe_scripts([c for b in BLOCKS if b.lang == "shell" for c in script_calls(b)])
    return lambda script, argv: results[script, tuple(argv)]


def test_every_block_is_well_formed():
    """A fence says its language; a marker is a known kind (with a reason) right before one."""
    assert PROBLEMS == []
    assert len(BLOCKS) >= 30


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_block_parses(block, probe):
    check = {"shell": lambda b: check_shell(b, probe), "python": check_python,
             "yaml": check_yaml, "text": lambda b: []}[block.lang]
    assert check(block) == []


@pytest.mark.parametrize("block", RUNS, ids=lambda b: b.id)
def test_block_runs(block, chain, tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    failure = run(block, workdir_for(block, chain, root), doc_env(root))
    assert failure == "", failure
    shutil.rmtree(root)                  # ~75 MB per block; a failed block's copy stays
