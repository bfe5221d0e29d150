"""DVC stage mimic_cohort: time-window cohort (SPEC section 3) and patient-disjoint splits.

Same as `symile-data mimic cohort`.
"""
from __future__ import annotations

import sys

from symile_data.mimic.cli import COHORT
from symile_data.stage import run_stage

COMMAND = COHORT


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
