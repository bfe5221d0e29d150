"""DVC stage mimic_cohort: time-window cohort (SPEC section 3) and patient-disjoint splits."""
from __future__ import annotations

import argparse
import sys

from symile_data.config import load_section
from symile_data.mimic.cohort import build_cohort
from symile_data.mimic.config import CohortConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mimic-iv", default="data/mimic/raw/mimic-iv")
    ap.add_argument("--ecg", default="data/mimic/raw/mimic-iv-ecg")
    ap.add_argument("--cxr", default="data/mimic/raw/mimic-cxr-jpg")
    ap.add_argument("--out", default="data/mimic/cohort")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    cfg = load_section(CohortConfig, "mimic_cohort", args.params)
    build_cohort(args.mimic_iv, args.ecg, args.cxr, args.out, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
