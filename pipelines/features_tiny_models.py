"""DVC stage features_tiny_models: tiny random encoders for the offline demo and tests."""
from __future__ import annotations

import argparse
import sys

from symile_data.config import load_section
from symile_data.features.config import TinyModelsConfig
from symile_data.features.tiny_models import write_tiny_models


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="data/models/tiny")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    cfg = load_section(TinyModelsConfig, "features_tiny_models", args.params)
    write_tiny_models(args.out, seed=cfg.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
