"""``symile-data mimic import-release``: the released Symile-MIMIC tensors -> our shards.

Settings: params section ``mimic_release`` (profiles/mimic-release/params.yaml); the flags
override them. The DVC stage ``pipelines/mimic_release.py`` calls ``main``.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from symile_data.stage import Command, add_command, run_stage


@dataclass(frozen=True)
class MimicReleaseConfig:
    release: str = ""        # the PhysioNet symile-mimic folder (CSVs + tensors)
    seed: int = 0            # position of the true CXR among each query's candidates
    max_rows_per_shard: int = 1000
    target_shard_bytes: int = 500_000_000
    row_group_rows: int = 64

    def validate(self) -> None:
        if not self.release:
            raise ValueError("release: give the folder of the PhysioNet symile-mimic files")


def _import(args) -> int:
    from symile_data.config import from_dict, load_section, to_dict
    from symile_data.io.parquet import ShardSpec
    from symile_data.mimic.release_tensors import import_tensors
    base = to_dict(load_section(MimicReleaseConfig, "mimic_release", args.params)) \
        if args.params else {"release": ""}
    flags = {k: v for k, v in (("release", args.release), ("seed", args.seed)) if v is not None}
    cfg = from_dict(MimicReleaseConfig, {**base, **flags},
                    f"{args.params or '--release'}:mimic_release + flags")
    print(json.dumps(import_tensors(cfg.release, args.out, seed=cfg.seed,
                                    spec=ShardSpec.from_config(cfg)), indent=2))
    return 0


def _args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--release", help="the PhysioNet symile-mimic folder (overrides params)")
    s.add_argument("--out", required=True, help="e.g. data/mimic-release/shards")
    s.add_argument("--seed", type=int, help="position of the true CXR among the candidates")
    s.add_argument("--params", default=None, help="params file with a mimic_release section")


IMPORT_RELEASE = Command("mimic_release", "released tensors (+ CSVs) -> symile-mimic and "
                         "symile-mimic-retrieval shards (local use only: PhysioNet DUA)",
                         _args, _import, locks=("out",))


def register_import(sub) -> None:
    add_command(sub, "import-release", IMPORT_RELEASE)


def main(argv: list[str] | None = None) -> int:
    return run_stage(IMPORT_RELEASE, argv)
