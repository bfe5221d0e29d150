"""The toy chain every client test and bench/clients.py read: the dvc.yaml stages in-process
(tests/e2e/e2e_chain.py) up to the M3 missingness variant, with embedded media and the
WebDataset copy of the M3 samples on and MIMIC shards in Parquet and WebDataset."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from e2e_chain import run_chain, toy_params  # noqa: E402

# every root of datasets the chain writes (relative to the work dir) -> its kind
ROOTS = {"data/xor": "xor", "data/m3/samples": "m3 samples (embedded media)",
         "data/m3/samples/wds": "m3 samples (WebDataset)", "data/m3/shards": "m3 training shards",
         "data/m3/samples_miss/p0.5": "m3 missingness samples",
         "data/m3/shards_miss/p0.5": "m3 missingness training shards",
         "data/mimic/shards": "mimic shards (Parquet + WebDataset)"}


def client_params() -> dict:
    params = toy_params()
    params["m3_samples"].update(embed_media=True, wds_export=True, wds_samples_per_shard=40)
    params["mimic_shards"]["formats"] = ["parquet", "wds"]
    return params


def build_chain(work: str | Path) -> Path:
    """Run the toy chain in ``work`` (about 25 s on 2 cores); returns ``work``."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "params.yaml").write_text(yaml.safe_dump(client_params(), sort_keys=False))
    run_chain(REPO, work, until="m3_missing")
    return work
