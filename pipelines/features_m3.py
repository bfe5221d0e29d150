"""DVC stage features_m3: encode every unique M3 image, clip and text once."""
from __future__ import annotations

import argparse
import sys

from symile_data.config import load_section
from symile_data.features.config import FeaturesConfig
from symile_data.features.m3 import encode_m3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", required=True, help="m3_images table (file or dir)")
    ap.add_argument("--clips", required=True, help="m3_clips table (file or dir)")
    ap.add_argument("--samples", required=True, help="dir of m3_samples datasets")
    ap.add_argument("--out", default="data/features/m3")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    cfg = load_section(FeaturesConfig, "features_m3", args.params)
    encode_m3(cfg, args.images, args.clips, args.samples, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
