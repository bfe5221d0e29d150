"""DVC stage m3_release_eval (profiles/m3-release/dvc.yaml): evaluate the Symile and CLIP runs
trained on the imported release; same as `symile-data m3 release-eval`."""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.m3.release_cli import EVAL  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = EVAL


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
