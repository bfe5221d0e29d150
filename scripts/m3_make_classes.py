"""Write symile_data/resources/imagenet1k_classes.tsv from the class lists shipped in a timm wheel.

timm (PyPI, well kept) ships ``timm/data/_info/imagenet_synsets.txt`` (the 1,000 ILSVRC-2012
synsets, sorted = LOC_synset_mapping.txt order) and ``imagenet_synset_to_lemma.txt`` (WordNet
lemmas). We keep the first comma-separated lemma as the class name and apply the homonym fixes of
SPEC section 2. Run once (output is committed):

    pip download timm==1.0.31 --no-deps -d /tmp/timm
    python scripts/m3_make_classes.py /tmp/timm/timm-1.0.31-py3-none-any.whl
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from symile_data.m3.classes import HOMONYM_FIXES  # noqa: E402

OUT = ROOT / "symile_data" / "resources" / "imagenet1k_classes.tsv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", help="path to a timm wheel (.whl)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    with zipfile.ZipFile(args.wheel) as z:
        synsets = z.read("timm/data/_info/imagenet_synsets.txt").decode().split()
        lemmas = dict(line.split("\t", 1) for line in
                      z.read("timm/data/_info/imagenet_synset_to_lemma.txt").decode().splitlines()
                      if "\t" in line)
    if len(synsets) != 1000 or synsets != sorted(synsets):
        raise SystemExit(f"{args.wheel}: expected 1000 sorted synsets, got {len(synsets)}")
    lines = ["cls_id\tsynset\tname\tlemmas"]
    for i, s in enumerate(synsets):
        lem = lemmas[s].strip()
        name = HOMONYM_FIXES.get(s, lem.split(",")[0].strip())
        lines.append(f"{i}\t{s}\t{name}\t{lem}")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(synsets)} classes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
