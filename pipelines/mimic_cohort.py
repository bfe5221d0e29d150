"""DVC stage mimic_cohort: time-window cohort (SPEC section 3) and patient-disjoint splits.

Same as `symile-data mimic cohort`.
"""
from __future__ import annotations

import os
import sys

# Arrow on glibc's allocator for this stage, set before pyarrow is imported: the joins free
# many Arrow buffers allocated on reader threads (CSV read-ahead, Parquet decode), which
# mimalloc's per-thread heaps keep while glibc's malloc_trim returns them; measured peak
# 186-196 -> 200-216 MB (mimalloc) vs 162 -> 166 MB (glibc) from 10k to 100k admissions
# (docs/mimic.md "Scale"). An explicit ARROW_DEFAULT_MEMORY_POOL wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.mimic.cli import COHORT  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = COHORT


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
