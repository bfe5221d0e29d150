"""`dvc push` never uploads MIMIC-derived data: every out of every stage downstream of the MIMIC
sources (DVC's own stage graph, read from dvc.yaml) has ``push: false``; other outs stay
pushable, so the marks follow the graph and nothing else."""
from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# dvc's graph code triggers pygtrie deprecation notices: noise, not this project's
pytestmark = pytest.mark.filterwarnings("ignore:_NoneStep.value:DeprecationWarning")
MIMIC_SOURCE = "${mimic_sources."      # how dvc.yaml names the PhysioNet trees (params)


def _source_stages(dvc_yaml: dict) -> set[str]:
    """Stages (DVC addressing names, matrix items included) reading a MIMIC source tree."""
    return {name for name, st in dvc_yaml["stages"].items()
            if any(MIMIC_SOURCE in str(d) for d in st.get("deps", []))}


@pytest.fixture(scope="module")
def index():
    from dvc.repo import Repo
    with Repo(str(REPO)) as repo:
        stages = list(repo.index.stages)
        yield stages, repo.index.graph


def test_every_mimic_derived_out_has_push_false(index):
    stages, graph = index
    roots = _source_stages(yaml.safe_load((REPO / "dvc.yaml").read_text()))
    assert {"mimic_cohort", "mimic_shards"} <= roots
    derived = set()
    for st in stages:
        if st.name.split("@")[0] in roots:
            # DVC's graph points from a stage to the stages it depends on
            derived |= {st, *nx.ancestors(graph, st)}
    names = {s.addressing for s in derived}
    assert {"mimic_train@symile", "mimic_train@clip", "mimic_eval", "validate_all",
            "report"} <= names
    pushable = [f"{s.addressing}: {o.def_path}" for s in derived for o in s.outs if o.can_push]
    assert pushable == [], f"MIMIC-derived outs without push: false: {pushable}"
    # everything else (XOR, M3, the MIMIC demo generator) stays pushable
    blocked = [f"{s.addressing}: {o.def_path}" for s in stages if s not in derived
               for o in s.outs if not o.can_push]
    assert blocked == [], f"push: false on outs not derived from MIMIC: {blocked}"
