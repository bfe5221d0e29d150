"""``symile-data mimic import-release``: the released Symile-MIMIC tensors -> our shards."""
from __future__ import annotations

import json


def _import(args) -> int:
    from symile_data.mimic.release_tensors import import_tensors
    print(json.dumps(import_tensors(args.release, args.out, seed=args.seed), indent=2))
    return 0


def register_import(sub) -> None:
    s = sub.add_parser("import-release", help="released tensors (+ CSVs) -> symile-mimic and "
                       "symile-mimic-retrieval shards (local use only: PhysioNet DUA)")
    s.add_argument("--release", required=True, help="the PhysioNet symile-mimic folder")
    s.add_argument("--out", required=True, help="e.g. data/mimic-release/shards")
    s.add_argument("--seed", type=int, default=0,
                   help="position of the true CXR among each query's candidates")
    s.set_defaults(func=_import)
