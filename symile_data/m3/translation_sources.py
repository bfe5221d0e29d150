"""Translation backends: ``file`` (reference layout), ``hub`` (released translations.json),
``google`` (Cloud Translation v2; online, cached, throttled, retried, HTML-unescaped)."""
from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

from tenacity import (retry, retry_if_exception_type, stop_after_attempt,
                      wait_exponential_jitter)

from symile_data.io.atomic import atomic_write_json
from symile_data.m3.classes import ClassTable
from symile_data.m3.parallel import Throttle
from symile_data.m3.translations import TranslationError, read_translations

log = logging.getLogger(__name__)
GOOGLE_URL = "https://translation.googleapis.com/language/translate/v2"
GOOGLE_BATCH = 100  # strings per request (the API allows 128)


def hub_translations(repo_id: str, revision: str | None, cache_dir: str | Path
                     ) -> dict[str, dict[str, Any]]:
    """Download ``translations.json`` from the dataset repo root (cached by huggingface_hub;
    HF_TOKEN from the environment for gated repos)."""
    from huggingface_hub import hf_hub_download
    try:
        path = hf_hub_download(repo_id, "translations.json", repo_type="dataset",
                               revision=revision, cache_dir=str(cache_dir))
    except Exception as e:  # network, auth, offline mode: one clear message
        raise TranslationError(
            f"could not get translations.json from the Hub dataset '{repo_id}' "
            f"(revision {revision or 'main'}): {type(e).__name__}: {e}. Offline? Use "
            f"backend 'file' with a local copy, or unset HF_HUB_OFFLINE / set HF_TOKEN.") from e
    return read_translations(path)


class _Transient(Exception):
    """A retryable HTTP answer (429 / 5xx) or connection error."""


class GoogleTranslator:
    """Cloud Translation v2 client with a per-language JSON cache and a request throttle."""

    def __init__(self, api_key: str, cache_dir: str | Path, min_interval_s: float = 0.2,
                 retries: int = 5, post: Callable[..., Any] | None = None):
        if not api_key:
            raise TranslationError("google backend: no API key (set the environment variable "
                                   "named by m3_translations.google_api_key_env)")
        self.api_key, self.cache_dir = api_key, Path(cache_dir)
        self.min_interval_s, self.retries = min_interval_s, retries
        self._post = post
        self._throttle = Throttle(min_interval_s).wait

    def _request(self, texts: list[str], target: str) -> list[str]:
        post = self._post
        if post is None:
            import requests
            post = requests.post

        @retry(retry=retry_if_exception_type(_Transient), stop=stop_after_attempt(self.retries),
               wait=wait_exponential_jitter(initial=1, max=60), reraise=True)
        def once() -> list[str]:
            self._throttle()
            try:
                r = post(GOOGLE_URL, params={"key": self.api_key}, timeout=30,
                         json={"q": texts, "source": "en", "target": target, "format": "text"})
            except OSError as e:  # requests' ConnectionError/Timeout subclass OSError
                raise _Transient(f"connection error: {e}") from e
            if r.status_code == 429 or r.status_code >= 500:
                raise _Transient(f"HTTP {r.status_code}")
            if r.status_code != 200:
                raise TranslationError(f"google translate to {target}: HTTP {r.status_code}: "
                                       f"{r.text[:300]}")
            out = [html.unescape(t["translatedText"])
                   for t in r.json()["data"]["translations"]]
            if len(out) != len(texts):
                raise TranslationError(f"google translate to {target}: {len(out)} answers "
                                       f"for {len(texts)} strings")
            return out

        try:
            return once()
        except _Transient as e:
            raise TranslationError(f"google translate to {target}: gave up after "
                                   f"{self.retries} tries ({e}); offline?") from e

    def translate(self, texts: list[str], target: str) -> list[str]:
        cache_path = self.cache_dir / f"google_{target}.json"
        cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
        todo = sorted({t for t in texts if t not in cache})
        for i in range(0, len(todo), GOOGLE_BATCH):
            batch = todo[i:i + GOOGLE_BATCH]
            cache.update(zip(batch, self._request(batch, target)))
            atomic_write_json(cache_path, cache)  # progress survives a crash
        return [cache[t] for t in texts]


def google_translations(classes: ClassTable, synsets: tuple[str, ...], langs: tuple[str, ...],
                        translator: GoogleTranslator) -> dict[str, dict[str, Any]]:
    """Translate the English class names of ``synsets`` (empty = all 1,000) into ``langs``."""
    ids = [classes.cls_id(s) for s in synsets] if synsets else list(range(len(classes)))
    names = [classes.names[i] for i in ids]
    table = {n: {"synset_id": classes.synsets[i], "cls_id": i, "en": n}
             for n, i in zip(names, ids)}
    for lang in langs:
        if lang == "en":
            continue
        for n, t in zip(names, translator.translate(names, lang)):
            table[n][lang] = t
    return table


def api_key_from_env(var: str) -> str:
    return os.environ.get(var, "")
