"""The unique-clip table ``m3_clips``: sentence pool -> TTS clips, or Common Voice folders.

Sentence pool: ``{lang: [sentence, ...]}``; every requested language needs at least one
sentence, and no sentence may name a class in its own language (the audio must give the
language only). Common Voice: ``{root}/{lang}/validated.tsv`` (columns path, sentence) with the
clips in ``{root}/{lang}/clips/``; unreadable clips and clips of another locale (``locale``
column, else the ``common_voice_{locale}_{n}`` file name) are "failed", zero-duration ones
"dropped" (SPEC section 2), all kept as rows with the reason.
"""
from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from symile_data.hashing import sha256_file, short_key
from symile_data.m3 import speech
from symile_data.m3.translations import check_languages, clean_text, read_json_mapping

_SPACE_LANGS = {"ar", "el", "en", "hi", "te", "uk"}  # word-boundary match; others: substring
_CV_NAME = re.compile(r"^common_voice_([A-Za-z]{2,3}(?:-[A-Za-z]+)?)_\d+\.\w+$")


def _plain(s: str) -> str:
    """invisible marks dropped, casefold, punctuation/symbols -> spaces, single-spaced with
    padding."""
    s = clean_text(s).casefold()
    s = "".join(" " if unicodedata.category(c)[0] in "PSZ" else c for c in s)
    return f" {' '.join(s.split())} "


def names_class(sentence: str, name: str, lang: str) -> bool:
    if lang in _SPACE_LANGS:
        return _plain(name) in _plain(sentence)
    return _plain(name).strip() in _plain(sentence)


def load_sentences(path: str | Path, langs: Sequence[str], class_rows: list[dict[str, Any]]
                   ) -> dict[str, list[str]]:
    pool = read_json_mapping(path, "sentence pool", "{language: [sentence, ...]}")
    check_languages(list(pool), str(path))
    out = {}
    for lang in langs:
        sents = [s.strip() for s in pool.get(lang) or [] if isinstance(s, str) and s.strip()]
        if not sents:
            raise ValueError(f"{path}: empty sentence pool for language '{lang}'")
        for i, s in enumerate(sents):
            for r in class_rows:
                if lang in r and names_class(s, r[lang], lang):
                    raise ValueError(f"{path}: {lang} sentence {i} {s!r} names class "
                                     f"'{r['en']}' ({r[lang]!r}); audio must not give the class")
        out[lang] = sorted(set(sents))
    return out


def tts_items(pool: dict[str, list[str]], engine: str, voices: dict[str, str]
              ) -> list[tuple[str, str, str, str]]:
    """[(text, lang, engine, voice)]; espeak voices checked up front (fail fast)."""
    items = []
    for lang, sents in sorted(pool.items()):
        voice = voices.get(lang) or (speech.ESPEAK_VOICES[lang] if engine == "espeak-ng"
                                     else speech.GTTS_LANGS[lang])
        if engine == "espeak-ng":
            speech.check_voice(voice, lang)
        items += [(s, lang, engine, voice) for s in sents]
    return items


def _row(text, lang, engine, voice, key, **kw) -> dict[str, Any]:
    row = {"audio_key": key, "lang": lang, "text": text, "engine": engine, "voice": voice,
           "source_path": None, "path": None, "sample_rate": None, "duration_s": None,
           "status": "failed", "error": None}
    row.update(kw)
    return row


def make_clip(item: tuple[str, str, str, str], out_dir: str, *, retries: int = 5,
              tld: str = "com", throttle: speech.Throttle | None = None, gtts_cls=None
              ) -> dict[str, Any]:
    """Synthesize one clip (or reuse the cached file) -> one m3_clips row; never raises."""
    text, lang, engine, voice = item
    key = speech.audio_key(text, lang, engine, voice)
    rel = speech.clip_relpath(key, "mp3" if engine == "gtts" else "wav")
    out = Path(out_dir) / rel
    try:
        if not out.exists():
            if engine == "espeak-ng":
                speech.synth_espeak(text, lang, voice, out)
            else:
                speech.synth_gtts(text, lang, out, voice=voice, tld=tld, retries=retries,
                                  throttle=throttle, gtts_cls=gtts_cls)
        sr, dur = speech.clip_info(out)
    except (speech.SpeechError, OSError, RuntimeError) as e:
        return _row(text, lang, engine, voice, key, error=f"clip {key}: {e}")
    if dur <= 0:
        return _row(text, lang, engine, voice, key, status="dropped", error="zero duration")
    return _row(text, lang, engine, voice, key, path=rel, sample_rate=sr, duration_s=dur,
                status="ok")


class EspeakBatch:
    """Picklable batch function for parallel.map_batches."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def __call__(self, batch):
        return [make_clip(it, self.out_dir) for it in batch]


def clip_locale(row: dict[str, str]) -> str:
    """The locale Common Voice recorded for a clip: ``locale`` column, else the file name
    ``common_voice_{locale}_{n}.mp3``; "" when neither says."""
    m = _CV_NAME.match(Path(row["path"]).name)
    return (row.get("locale") or "").strip() or (m.group(1) if m else "")


def common_voice_items(root: str | Path, langs: Sequence[str], max_per_lang: int, seed: int
                       ) -> list[tuple[str, str, str, str]]:
    """[(lang, sentence, clip path, recorded locale)] from validated.tsv; a seeded subsample per
    language."""
    items = []
    for lang in langs:
        tsv = Path(root) / lang / "validated.tsv"
        if not tsv.exists():
            raise FileNotFoundError(f"{tsv}: Common Voice transcript table not found for '{lang}'")
        with tsv.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        if rows and not {"path", "sentence"} <= set(rows[0]):
            raise ValueError(f"{tsv}: needs columns 'path' and 'sentence'")
        rows.sort(key=lambda r: r["path"])
        if max_per_lang and len(rows) > max_per_lang:
            rng = np.random.default_rng([seed, len(items)])
            keep = np.sort(rng.choice(len(rows), max_per_lang, replace=False))
            rows = [rows[i] for i in keep]
        items += [(lang, r["sentence"], str(tsv.parent / "clips" / r["path"]), clip_locale(r))
                  for r in rows]
    return items


def common_voice_clip(item: tuple[str, str, str, str]) -> dict[str, Any]:
    lang, sentence, src, locale = item
    try:
        key = short_key(sha256_file(src), lang, "common_voice", n=32)
    except OSError as e:
        return _row(sentence, lang, "common_voice", "", short_key(src, n=32),
                    source_path=src, error=f"unreadable: {e}")
    try:
        if locale:
            speech.check_locale(lang, locale, src)
    except speech.SpeechError as e:
        return _row(sentence, lang, "common_voice", "", key, source_path=src, error=str(e))
    try:
        sr, dur = speech.clip_info(Path(src))
    except (RuntimeError, OSError) as e:  # soundfile raises LibsndfileError (RuntimeError)
        return _row(sentence, lang, "common_voice", "", key, source_path=src,
                    error=f"cannot decode audio: {e}")
    if dur <= 0:
        return _row(sentence, lang, "common_voice", "", key, source_path=src,
                    status="dropped", error="zero duration")
    return _row(sentence, lang, "common_voice", "", key, source_path=src, path=src,
                sample_rate=sr, duration_s=dur, status="ok")


def common_voice_batch(batch):
    return [common_voice_clip(it) for it in batch]


def clips_summary(rows: list[dict[str, Any]], langs: Sequence[str]) -> dict[str, Any]:
    by = {lang: {"ok": 0, "failed": 0, "dropped": 0} for lang in langs}
    for r in rows:
        by[r["lang"]][r["status"]] += 1
    return {"clips": len(rows), "by_language": by,
            "failed_examples": [{"lang": r["lang"], "text": r["text"], "status": r["status"],
                                 "error": r["error"]} for r in rows if r["status"] != "ok"][:20],
            "languages_without_clips": [lang for lang, c in by.items() if c["ok"] == 0]}
