"""The 1,000 ImageNet-1k classes (SPEC section 2): synset ids in LOC_synset_mapping.txt order.

cls_id = index in that order (0..999); class name = first comma-separated lemma, with the
homonym fixes below so that no two classes share an English name. The table ships as
``symile_data/resources/imagenet1k_classes.tsv`` (generated once from timm's class lists by
``scripts/m3_make_classes.py``); a local ``LOC_synset_mapping.txt`` can be read instead.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
CLASSES_TSV = RESOURCES / "imagenet1k_classes.tsv"

# SPEC section 2: three homonyms ("crane" twice, "maillot" twice) get distinct names.
HOMONYM_FIXES = {
    "n03126707": "crane machine",
    "n02012849": "crane bird",
    "n03710721": "swimsuit",
}
SYNSET_RE = re.compile(r"^n\d{8}$")


@dataclass(frozen=True)
class ClassTable:
    """Parallel tuples, index = cls_id."""
    synsets: tuple[str, ...]
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.synsets)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.synsets)}

    def cls_id(self, synset: str, where: str = "") -> int:
        if synset not in self.index:
            raise ValueError(f"{where}unknown ImageNet-1k synset '{synset}'")
        return self.index[synset]


def _check(synsets: list[str], names: list[str], where: str) -> ClassTable:
    bad = [s for s in synsets if not SYNSET_RE.match(s)]
    if bad:
        raise ValueError(f"{where}: malformed synset id(s) {bad[:5]}")
    if len(set(synsets)) != len(synsets):
        raise ValueError(f"{where}: duplicate synset ids")
    seen: dict[str, str] = {}
    for s, n in zip(synsets, names):
        if n in seen:
            raise ValueError(f"{where}: classes {seen[n]} and {s} share the name '{n}'")
        seen[n] = s
    return ClassTable(tuple(synsets), tuple(names))


@functools.lru_cache(maxsize=4)
def load_classes(path: str | Path = CLASSES_TSV) -> ClassTable:
    """Read the packaged TSV (cls_id, synset, name, lemmas) or a LOC_synset_mapping.txt."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: class list not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".tsv":
        rows = [line.split("\t") for line in text.splitlines()[1:] if line]
        synsets, names = [r[1] for r in rows], [r[2] for r in rows]
        for i, r in enumerate(rows):
            if int(r[0]) != i:
                raise ValueError(f"{path}: row {i + 2}: cls_id {r[0]} out of order")
    else:  # LOC_synset_mapping.txt: "n01440764 tench, Tinca tinca"
        synsets, names = [], []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(" ", 1)
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected 'SYNSET names', got {line!r}")
            synsets.append(parts[0])
            names.append(HOMONYM_FIXES.get(parts[0], parts[1].split(",")[0].strip()))
    return _check(synsets, names, str(path))
