"""DVC stage mimic_shards: preprocessed arrays, retrieval sets and shards (mimic_derived)."""
from __future__ import annotations

import argparse
import sys

from symile_data.config import load_section
from symile_data.mimic.build import build_shards
from symile_data.mimic.config import ShardsConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cohort", default="data/mimic/cohort")
    ap.add_argument("--ecg", default="data/mimic/raw/mimic-iv-ecg")
    ap.add_argument("--cxr", default="data/mimic/raw/mimic-cxr-jpg")
    ap.add_argument("--out", default="data/mimic/shards")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    cfg = load_section(ShardsConfig, "mimic_shards", args.params)
    build_shards(args.cohort, args.ecg, args.cxr, args.out, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
