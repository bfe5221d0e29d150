"""DVC stage xor_eval: evaluate every synthetic-XOR run -> reports/xor/metrics.json."""
from __future__ import annotations

import argparse
import sys

from symile_data.config import load_section
from symile_data.train.config import EvalConfig, XorTrainConfig
from symile_data.train.xor_experiment import evaluate_xor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default="data/xor")
    ap.add_argument("--models", default="models/xor")
    ap.add_argument("--out", default="reports/xor/metrics.json")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    evaluate_xor(args.data, args.models, load_section(XorTrainConfig, "xor_train", args.params),
                 load_section(EvalConfig, "xor_eval", args.params), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
