"""Class-name translations: load (file / hub / google), apply overrides, check clashes.

Reference layout (``translations.json`` at the root of the released dataset repo):
``{english name: {"synset_id": .., "cls_id": .., "<lang>": "<name in lang>", ...}}``.
A class's words must differ across languages (otherwise the text would not tell which word is
in the audio's language); ``check_clashes`` reports every clash and stops with the fix.
"""
from __future__ import annotations

import json
import logging
import unicodedata
from pathlib import Path
from typing import Any

from symile_data.m3.classes import ClassTable, load_classes

log = logging.getLogger(__name__)

# SPEC section 2: languages per w (order = lang_id).
LANGS_BY_W = {
    2: ("en", "el"),
    5: ("el", "en", "hi", "ja", "uk"),
    10: ("ar", "el", "en", "hi", "ja", "ko", "te", "th", "uk", "zh-CN"),
}
ALL_LANGS = LANGS_BY_W[10]


class TranslationError(ValueError):
    """Bad translation input; the message names the file, class and language."""


def check_languages(langs: tuple[str, ...] | list[str], where: str) -> None:
    bad = [lang for lang in langs if lang not in ALL_LANGS]
    if bad:
        raise TranslationError(f"{where}: unknown language code(s) {bad}; "
                               f"supported: {', '.join(ALL_LANGS)}")


def langs_for_w(w: int) -> tuple[str, ...]:
    if w not in LANGS_BY_W:
        raise ValueError(f"w must be one of {sorted(LANGS_BY_W)}, got {w}")
    return LANGS_BY_W[w]


# Invisible format characters dropped from every name before the clash check and before it is
# written (machine translation and copy-paste leave them in): the bidi controls LRM/RLM
# (U+200E, U+200F), ALM (U+061C), embeddings/overrides LRE..RLO (U+202A-U+202E), isolates
# LRI..PDI (U+2066-U+2069), zero-width space (U+200B), word joiner (U+2060), invisible math
# operators (U+2061-U+2064), BOM / zero-width no-break space (U+FEFF) and the soft hyphen
# (U+00AD). ZWNJ / ZWJ (U+200C, U+200D) are kept: they change the spelling of Indic and
# Arabic-script words.
INVISIBLE = frozenset("\u00ad\u061c\u200b\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
                      + "".join(map(chr, range(0x202A, 0x202F)))
                      + "".join(map(chr, range(0x2066, 0x206A))))
_DROP = {ord(c): None for c in INVISIBLE}


def clean_text(s: str) -> str:
    """NFC, invisible format characters dropped, whitespace runs (NBSP included) -> one space,
    stripped: the form every translated name is checked and written in."""
    return " ".join(unicodedata.normalize("NFC", str(s)).translate(_DROP).split())


def _norm(s: str) -> str:
    """The form the clash check compares: clean_text + casefold."""
    return clean_text(s).casefold()


def read_json_mapping(path: str | Path, what: str, layout: str) -> dict[str, Any]:
    """A JSON object from ``path``; errors name the file, ``what`` it is and the ``layout``."""
    path = Path(path)
    if not path.exists():
        raise TranslationError(f"{path}: {what} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TranslationError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise TranslationError(f"{path}: expected {layout}")
    return data


def read_translations(path: str | Path) -> dict[str, dict[str, Any]]:
    return read_json_mapping(path, "translations file",
                             "an object keyed by English class name")


def apply_overrides(table: dict[str, dict[str, Any]], overrides_path: str | Path
                    ) -> tuple[dict[str, dict[str, Any]], int]:
    """Overrides file: ``{english name: {lang: string}}``. Returns (new table, n applied)."""
    over = read_translations(overrides_path)
    out = {k: dict(v) for k, v in table.items()}
    n = 0
    for name, langs in over.items():
        if name not in out:
            raise TranslationError(f"{overrides_path}: override for unknown class '{name}'")
        if not isinstance(langs, dict):
            raise TranslationError(f"{overrides_path}: '{name}' must map language -> string")
        check_languages(list(langs), f"{overrides_path}: '{name}'")
        for lang, s in langs.items():
            out[name][lang] = s
            n += 1
    return out, n


def normalise(table: dict[str, dict[str, Any]], langs: tuple[str, ...], where: str,
              classes: ClassTable | None = None, only: tuple[str, ...] = ()
              ) -> list[dict[str, Any]]:
    """Validate entries; return rows sorted by cls_id with keys synset_id, cls_id, en + langs.

    ``only``: synsets to keep (empty = every class in the table).
    """
    classes = classes or load_classes()
    check_languages(langs, where)
    rows, seen = [], set()
    for name, entry in table.items():
        syn = entry.get("synset_id") if isinstance(entry, dict) else None
        if syn is None:
            raise TranslationError(f"{where}: class '{name}' has no synset_id")
        if syn not in classes.index:
            raise TranslationError(f"{where}: class '{name}': unknown ImageNet-1k synset "
                                   f"'{syn}'")
        cid = classes.index[syn]
        if "cls_id" in entry and int(entry["cls_id"]) != cid:
            raise TranslationError(f"{where}: class '{name}' ({syn}) has cls_id "
                                   f"{entry['cls_id']}, ImageNet-1k order says {cid}")
        if only and syn not in only:
            continue
        missing = [lang for lang in langs if not clean_text(entry.get(lang) or "")]
        if missing:
            raise TranslationError(f"{where}: class '{name}' ({syn}) lacks a translation "
                                   f"for {missing}")
        seen.add(syn)
        row = {"synset_id": syn, "cls_id": cid, "en": clean_text(entry.get("en", name))}
        row.update({lang: clean_text(entry[lang]) for lang in langs})
        rows.append(row)
    absent = sorted(set(only) - seen)
    if absent:
        raise TranslationError(f"{where}: no translations for requested class(es) {absent[:10]}")
    if not rows:
        raise TranslationError(f"{where}: no classes")
    return sorted(rows, key=lambda r: r["cls_id"])


def find_clashes(rows: list[dict[str, Any]], langs: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every string (NFC + casefold) used by more than one (class, language) pair.

    A text token must name exactly one class in exactly one language: the same word for one
    class in two languages (ja/zh-CN 火山 for volcano) hides which word is in the audio's
    language; the same word for two classes (ja 豹 = jaguar, zh-CN 豹 = leopard; el γερανός
    for both cranes) hides the class. Both are clashes.
    """
    uses: dict[str, list[tuple[str, str, str]]] = {}
    for r in rows:
        for lang in langs:
            uses.setdefault(_norm(r[lang]), []).append((r["en"], r["synset_id"], lang))
    return [{"string": next(r[u[0][2]] for r in rows if r["en"] == u[0][0]),
             "uses": [{"class": c, "synset_id": s, "lang": lang} for c, s, lang in u]}
            for u in uses.values() if len(u) > 1]


def check_clashes(rows: list[dict[str, Any]], langs: tuple[str, ...], where: str,
                  overrides_path: str = "") -> None:
    clashes = find_clashes(rows, langs)
    if not clashes:
        return
    lines = [f"  {c['string']!r} is " + " and ".join(
        f"{u['class']} ({u['synset_id']}) in {u['lang']}" for u in c["uses"]) for c in clashes]
    ex = clashes[0]["uses"][-1]
    fix = json.dumps({ex["class"]: {ex["lang"]: "<distinct word>"}}, ensure_ascii=False)
    raise TranslationError(
        f"{where}: {len(clashes)} clash(es): one string names several (class, language) "
        f"pairs, so the text would not tell the class or the audio's language:\n"
        + "\n".join(lines) +
        f"\nFix: give each a distinct word in the manual overrides file "
        f"({overrides_path or 'set m3_translations.overrides'}), e.g. {fix} "
        f"(for Japanese, a kana spelling usually differs from the Chinese hanzi).")


def to_reference_layout(rows: list[dict[str, Any]], langs: tuple[str, ...]) -> dict[str, Any]:
    return {r["en"]: {"synset_id": r["synset_id"], "cls_id": r["cls_id"],
                      **{lang: r[lang] for lang in sorted(set(langs) | {"en"})}} for r in rows}
