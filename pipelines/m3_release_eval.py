"""DVC stage m3_release_eval (profiles/m3-release/dvc.yaml): evaluate the Symile and CLIP runs
trained on the imported release (no missingness sweep, unlike m3_eval)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from symile_data.config import load_section
from symile_data.e2e.evaluation import evaluate_m3_runs
from symile_data.train.config import EvalConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="models/m3-release", help="holds symile/ and clip/")
    ap.add_argument("--translations", default="data/m3-release/translations")
    ap.add_argument("--out", default="reports/m3-release/metrics.json")
    ap.add_argument("--params", default="profiles/m3-release/params.yaml")
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)
    evaluate_m3_runs([Path(args.models) / m for m in ("symile", "clip")], args.translations,
                     load_section(EvalConfig, "m3_eval", args.params), args.out,
                     device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
