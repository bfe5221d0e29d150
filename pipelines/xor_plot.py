"""DVC stage xor_plot: accuracy against p for Symile and CLIP -> plots/xor.png."""
from __future__ import annotations

import argparse
import sys

from symile_data.train.plots import plot_xor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--metrics", default="reports/xor/metrics.json")
    ap.add_argument("--out", default="plots/xor.png")
    args = ap.parse_args(argv)
    plot_xor(args.metrics, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
