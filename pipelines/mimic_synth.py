"""DVC stage mimic_synth: a MIMIC-layout demo tree (hosp, ECG, CXR-JPG) with a planted signal.

Same as `symile-data mimic synth`.
"""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.mimic.cli import SYNTH  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = SYNTH


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
