"""DVC stage xor_data: synthetic XOR datasets (one per p) as Parquet shards."""
from __future__ import annotations

import argparse
import sys

from symile_data.config import add_params_args, load_section
from symile_data.xor import XorDataConfig, build_xor_datasets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="data/xor")
    add_params_args(ap)
    args = ap.parse_args(argv)
    cfg = load_section(XorDataConfig, "xor_data", args.params)
    build_xor_datasets(args.out, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
