"""DVC stage m3_shards: join M3 samples with encoder features into training shards."""
from __future__ import annotations

import argparse
import sys

from symile_data.config import load_section
from symile_data.features.config import JoinConfig
from symile_data.features.join import join_m3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", default="data/m3/samples")
    ap.add_argument("--features", default="data/features/m3")
    ap.add_argument("--out", default="data/m3/shards")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    cfg = load_section(JoinConfig, "m3_shards", args.params)
    join_m3(args.samples, args.features, args.out, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
