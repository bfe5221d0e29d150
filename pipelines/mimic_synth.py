"""DVC stage mimic_synth: a MIMIC-layout demo tree (hosp, ECG, CXR-JPG) with a planted signal."""
from __future__ import annotations

import argparse
import sys

from symile_data.config import load_section
from symile_data.mimic.config import SynthConfig
from symile_data.mimic.synth import synth_tree


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="data/mimic/raw")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    synth_tree(args.out, load_section(SynthConfig, "mimic_synth", args.params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
