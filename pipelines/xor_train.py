"""DVC stage xor_train (matrix over p x method): train one synthetic-XOR run."""
from __future__ import annotations

import argparse
import sys

from symile_data.config import load_section
from symile_data.train.config import XorTrainConfig
from symile_data.train.xor_experiment import train_xor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default="data/xor", help="root of the per-p dataset dirs")
    ap.add_argument("--models", default="models/xor", help="root of the run dirs")
    ap.add_argument("--p", type=float, action="append", help="only this p (repeatable)")
    ap.add_argument("--method", action="append", choices=["symile", "clip"])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    cfg = load_section(XorTrainConfig, "xor_train", args.params)
    train_xor(args.data, args.models, cfg, ps=args.p, methods=args.method)
    return 0


if __name__ == "__main__":
    sys.exit(main())
