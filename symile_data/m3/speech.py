"""Speech for Symile-M3: espeak-ng (offline), gTTS (online) and Common Voice clip folders.

A clip is keyed by the content hash of (text, lang, engine, voice) and synthesised once into
``{clips_dir}/files/{key[:2]}/{key}.{wav|mp3}``; an existing file is reused (cache/resume).
Audio must sound like its language, checked per clip by content (a failed check is a failed
clip row naming the text and voice, never a crash):

- espeak-ng: the voice's language tag must be the language's (``el`` for Greek, ``cmn`` for
  zh-CN; so ``ru`` is refused for Ukrainian, ``mr`` for Hindi); espeak-ng must not switch to
  another language's rules for part of the text (it marks that "(en)" in its phoneme output:
  kanji under the Japanese voice, fed as kana via pykakasi instead); and the phonemes of the text
  under the chosen voice must match those under the language's own voice (ESPEAK_VOICES) to at
  least MIN_PHONEME_SIMILARITY (an English voice spells Greek letters by name: similarity ~0.1;
  accent variants such as en-gb or en-029 for English text score 0.76-0.95).
- gTTS: the language code sent must be one gTTS knows and name the requested language.
- Common Voice: the clip's locale (``locale`` column of validated.tsv, else the
  ``common_voice_{locale}_{n}`` file name) must be the requested language.
"""
from __future__ import annotations

import difflib
import functools
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

import soundfile as sf
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from symile_data.errors import InputError
from symile_data.hashing import short_key
from symile_data.io.atomic import atomic_path
from symile_data.m3.parallel import Throttle

ESPEAK = "espeak-ng"
# language -> espeak-ng voice (Chinese read through pinyin rules, which also handle hanzi)
ESPEAK_VOICES = {"ar": "ar", "el": "el", "en": "en-us", "hi": "hi", "ja": "ja", "ko": "ko",
                 "te": "te", "th": "th", "uk": "uk", "zh-CN": "cmn-latn-pinyin"}
GTTS_LANGS = {lang: lang for lang in ESPEAK_VOICES}
_SWITCH = re.compile(r"\(([a-z]{2,3}(?:-[a-z0-9]+)*)\)")  # espeak-ng language-switch marker
# espeak-ng language tags (primary subtag) that speak each M3 language; default: the code itself
ESPEAK_PRIMARY = {"zh-CN": ("cmn",)}
MIN_PHONEME_SIMILARITY = 0.6
_NOT_PHONEME = re.compile(r"[\u02c8\u02cc\u02d0\u02d1\s_-]")    # stress, length, spaces


class SpeechError(RuntimeError):
    """A clip could not be made; recorded per clip (status 'failed', error)."""


class SpeechSetupError(SpeechError, InputError):
    """espeak-ng missing or lacking a configured voice: checked up front for the whole run,
    an input error (one line, exit 2), still a SpeechError for callers that catch those."""


def audio_key(text: str, lang: str, engine: str, voice: str) -> str:
    return short_key(text, lang, engine, voice, n=32)


def clip_relpath(key: str, ext: str) -> str:
    return f"files/{key[:2]}/{key}.{ext}"


@functools.lru_cache(maxsize=1)
def _kakasi():
    import pykakasi
    return pykakasi.kakasi()


def prepare_text(text: str, lang: str) -> str:
    """Japanese -> hiragana (espeak-ng's ja voice reads kana only); others unchanged."""
    if lang == "ja":
        return "".join(part["hira"] for part in _kakasi().convert(text))
    return text


@functools.lru_cache(maxsize=1)
def espeak_voice_names() -> frozenset[str]:
    try:
        out = subprocess.run([ESPEAK, "--voices"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise SpeechSetupError(f"espeak-ng not usable ({e}); install it "
                               f"(apt-get install espeak-ng) or set m3_clips.engine") from e
    return frozenset(line.split()[1] for line in out.stdout.splitlines()[1:] if line.split())


def check_voice(voice: str, lang: str) -> None:
    if voice not in espeak_voice_names():
        raise SpeechSetupError(f"espeak-ng has no voice '{voice}' for language '{lang}' "
                               f"(espeak-ng would fall back to English); set m3_clips.voices")


def primary(code: str) -> str:
    return code.replace("_", "-").split("-")[0].lower()


def espeak_phonemes(text: str, voice: str) -> str:
    """IPA of ``text`` under ``voice`` (language-switch markers such as "(en)" included)."""
    r = subprocess.run([ESPEAK, "-q", "--ipa", "-b", "1", "-v", voice, text],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SpeechError(f"espeak-ng -v {voice} failed: {r.stderr.strip()[:300]}")
    return r.stdout


def check_no_fallback(text: str, voice: str, phonemes: str | None = None) -> None:
    """Raise when espeak-ng would switch to another language's rules for part of ``text``."""
    phonemes = espeak_phonemes(text, voice) if phonemes is None else phonemes
    switched = sorted(set(_SWITCH.findall(phonemes)) - {voice})
    if switched:
        raise SpeechError(f"espeak-ng voice '{voice}' falls back to {switched} for {text!r}: "
                          f"the audio would not sound like the language; refused")


def phoneme_similarity(a: str, b: str) -> float:
    """Matching share (difflib ratio, 0..1) of two IPA strings, stress/length/spaces ignored."""
    a, b = _NOT_PHONEME.sub("", a), _NOT_PHONEME.sub("", b)
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() if a or b else 1.0


def check_espeak_language(text: str, lang: str, voice: str) -> None:
    """Raise SpeechError unless ``voice`` speaks ``text`` (already prepared) as ``lang``."""
    want = ESPEAK_PRIMARY.get(lang, (primary(lang),))
    if primary(voice) not in want:
        raise SpeechError(f"espeak-ng voice '{voice}' speaks '{primary(voice)}', not {lang} "
                          f"(expected a voice of {list(want)}); {text!r} refused")
    got = espeak_phonemes(text, voice)
    check_no_fallback(text, voice, got)
    own = ESPEAK_VOICES[lang]
    if voice != own:
        sim = phoneme_similarity(espeak_phonemes(text, own), got)
        if sim < MIN_PHONEME_SIMILARITY:
            raise SpeechError(f"espeak-ng voice '{voice}' does not speak {lang}: its phonemes "
                              f"of {text!r} match the {lang} voice '{own}' only {sim:.0%} "
                              f"(< {MIN_PHONEME_SIMILARITY:.0%}); refused")


def check_gtts_code(lang: str, code: str) -> None:
    """Raise SpeechError unless gTTS knows ``code`` and it names ``lang`` (zh for zh-CN)."""
    from gtts.lang import tts_langs
    if code not in tts_langs():
        raise SpeechError(f"gTTS has no language '{code}' (asked for {lang}); refused")
    if primary(code) != primary(lang):
        raise SpeechError(f"gTTS language '{code}' is not {lang}; refused")


def check_locale(lang: str, locale: str, clip: str) -> None:
    """Common Voice: the clip's recorded locale must be the requested language."""
    if locale.replace("_", "-").lower() != lang.lower():
        raise SpeechError(f"Common Voice clip {clip}: locale '{locale}' is not {lang}; refused")


def synth_espeak(text: str, lang: str, voice: str, out: Path) -> None:
    spoken = prepare_text(text, lang)
    check_espeak_language(spoken, lang, voice)
    with atomic_path(out) as tmp:
        r = subprocess.run([ESPEAK, "-b", "1", "-v", voice, "-w", str(tmp), spoken],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SpeechError(f"espeak-ng -v {voice} failed: {r.stderr.strip()[:300]}")


def synth_gtts(text: str, lang: str, out: Path, *, voice: str | None = None, tld: str = "com",
               retries: int = 5, throttle: Throttle | None = None,
               gtts_cls: Callable[..., Any] | None = None) -> None:
    """gTTS (online): MP3 in language code ``voice`` (default GTTS_LANGS[lang]) written
    atomically; the code is checked against ``lang`` first; HTTP failures retried with backoff."""
    code = voice or GTTS_LANGS[lang]
    check_gtts_code(lang, code)
    if gtts_cls is None:
        from gtts import gTTS as gtts_cls
    from gtts.tts import gTTSError

    @retry(retry=retry_if_exception_type(gTTSError), stop=stop_after_attempt(retries),
           wait=wait_exponential_jitter(initial=1, max=60), reraise=True)
    def once() -> None:
        if throttle is not None:
            throttle.wait()
        tts = gtts_cls(text=text, lang=code, tld=tld)
        with atomic_path(out) as tmp:
            tts.save(str(tmp))

    try:
        once()
    except gTTSError as e:
        raise SpeechError(f"gTTS failed for {lang} after {retries} tries (offline? gTTS needs "
                          f"translate.google.{tld}; use engine espeak-ng offline): {e}") from e


# decodable audio shorter than the header's duration by more than this share (+ 50 ms for
# encoder padding) is a truncated file (an MP3 cut short keeps its Xing header's length)
MAX_SHORTFALL = 0.02


def clip_info(path: Path) -> tuple[int, float]:
    """(sample_rate Hz, duration s) of an audio file: the duration of the audio that DECODES,
    checked against the header's; SpeechError naming the file when it is truncated."""
    with sf.SoundFile(str(path)) as f:
        sr, header_frames = int(f.samplerate), int(f.frames)
        frames = len(f.read(dtype="int16"))      # a clip: seconds of int16, small
    decoded, declared = frames / float(sr or 1), header_frames / float(sr or 1)
    if decoded < declared * (1 - MAX_SHORTFALL) - 0.05:
        raise SpeechError(f"{path}: truncated audio: {decoded:.2f} s decode of the "
                          f"{declared:.2f} s its header declares")
    return sr, decoded
