"""Speech for Symile-M3: espeak-ng (offline), gTTS (online) and Common Voice clip folders.

A clip is keyed by the content hash of (text, lang, engine, voice) and synthesised once into
``{clips_dir}/files/{key[:2]}/{key}.{wav|mp3}``; an existing file is reused (cache/resume).
Audio must sound like its language: espeak-ng marks a switch to another voice's rules with
"(en)" etc. in its phoneme output, and we refuse such text instead of writing English-sounding
audio (e.g. kanji under the Japanese voice; we feed Japanese as kana via pykakasi).
"""
from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

import soundfile as sf
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from symile_data.hashing import short_key
from symile_data.io.atomic import atomic_path
from symile_data.m3.parallel import Throttle

ESPEAK = "espeak-ng"
# language -> espeak-ng voice (Chinese read through pinyin rules, which also handle hanzi)
ESPEAK_VOICES = {"ar": "ar", "el": "el", "en": "en-us", "hi": "hi", "ja": "ja", "ko": "ko",
                 "te": "te", "th": "th", "uk": "uk", "zh-CN": "cmn-latn-pinyin"}
GTTS_LANGS = {lang: lang for lang in ESPEAK_VOICES}
_SWITCH = re.compile(r"\(([a-z]{2,3}(?:-[a-z0-9]+)*)\)")  # espeak-ng language-switch marker


class SpeechError(RuntimeError):
    """A clip could not be made; recorded per clip (status 'failed', error)."""


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
        raise SpeechError(f"espeak-ng not usable ({e}); install it (apt-get install espeak-ng)")
    return frozenset(line.split()[1] for line in out.stdout.splitlines()[1:] if line.split())


def check_voice(voice: str, lang: str) -> None:
    if voice not in espeak_voice_names():
        raise SpeechError(f"espeak-ng has no voice '{voice}' for language '{lang}' "
                          f"(espeak-ng would fall back to English); set m3_clips.voices")


def espeak_phonemes(text: str, voice: str) -> str:
    r = subprocess.run([ESPEAK, "-q", "-x", "-b", "1", "-v", voice, text],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SpeechError(f"espeak-ng -v {voice} failed: {r.stderr.strip()[:300]}")
    return r.stdout


def check_no_fallback(text: str, voice: str) -> None:
    """Raise when espeak-ng would switch to another language's rules for part of ``text``."""
    switched = sorted(set(_SWITCH.findall(espeak_phonemes(text, voice))) - {voice})
    if switched:
        raise SpeechError(f"espeak-ng voice '{voice}' falls back to {switched} for {text!r}: "
                          f"the audio would not sound like the language; refused")


def synth_espeak(text: str, lang: str, voice: str, out: Path) -> None:
    spoken = prepare_text(text, lang)
    check_no_fallback(spoken, voice)
    with atomic_path(out) as tmp:
        r = subprocess.run([ESPEAK, "-b", "1", "-v", voice, "-w", str(tmp), spoken],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SpeechError(f"espeak-ng -v {voice} failed: {r.stderr.strip()[:300]}")


def synth_gtts(text: str, lang: str, out: Path, *, tld: str = "com", retries: int = 5,
               throttle: Throttle | None = None, gtts_cls: Callable[..., Any] | None = None
               ) -> None:
    """gTTS (online): MP3 written atomically; HTTP failures retried with backoff."""
    if gtts_cls is None:
        from gtts import gTTS as gtts_cls
    from gtts.tts import gTTSError

    @retry(retry=retry_if_exception_type(gTTSError), stop=stop_after_attempt(retries),
           wait=wait_exponential_jitter(initial=1, max=60), reraise=True)
    def once() -> None:
        if throttle is not None:
            throttle.wait()
        tts = gtts_cls(text=text, lang=GTTS_LANGS[lang], tld=tld)
        with atomic_path(out) as tmp:
            tts.save(str(tmp))

    try:
        once()
    except gTTSError as e:
        raise SpeechError(f"gTTS failed for {lang} after {retries} tries (offline? gTTS needs "
                          f"translate.google.{tld}; use engine espeak-ng offline): {e}") from e


def clip_info(path: Path) -> tuple[int, float]:
    """(sample_rate Hz, duration s) of an audio file."""
    info = sf.info(str(path))
    return int(info.samplerate), float(info.frames) / float(info.samplerate or 1)
