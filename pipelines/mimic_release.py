"""DVC stage mimic_release (profiles/mimic-release/dvc.yaml): released tensors -> shards;
same as `symile-data mimic import-release`."""
from __future__ import annotations

import sys

from symile_data.kernels import pin_kernels

pin_kernels()  # before torch / numpy load: the same bytes on any x86-64 CPU

from symile_data.mimic.release_cli import IMPORT_RELEASE  # noqa: E402
from symile_data.stage import run_stage  # noqa: E402

COMMAND = IMPORT_RELEASE


def main(argv: list[str] | None = None) -> int:
    return run_stage(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
