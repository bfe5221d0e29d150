"""Translations: clash check, overrides, bad input, google/hub backends (offline fakes)."""
from __future__ import annotations

import json

import pytest

from symile_data.m3.build import build_translations
from symile_data.m3.classes import HOMONYM_FIXES, load_classes
from symile_data.m3.config import DEMO_TRANSLATIONS, M3TranslationsConfig
from symile_data.m3.translation_sources import GoogleTranslator
from symile_data.m3.translations import (INVISIBLE, TranslationError, clean_text,
                                         find_clashes, normalise)

from .conftest import REPO


def test_class_list_and_homonym_fixes():
    t = load_classes()
    assert len(t) == 1000 and t.synsets[0] == "n01440764" and list(t.synsets) == sorted(t.synsets)
    for syn, name in HOMONYM_FIXES.items():
        assert t.names[t.cls_id(syn)] == name
    assert len(set(t.names)) == 1000


def test_demo_table_has_no_clash():
    demo = json.loads((REPO / DEMO_TRANSLATIONS).read_text())
    rows = normalise(demo, M3TranslationsConfig().languages, "demo")
    assert len(rows) == 16 and find_clashes(rows, M3TranslationsConfig().languages) == []


def _table(tmp_path, mutate):
    demo = json.loads((REPO / DEMO_TRANSLATIONS).read_text())
    mutate(demo)
    p = tmp_path / "translations.json"
    p.write_text(json.dumps(demo, ensure_ascii=False))
    return p


def test_clashes_are_all_reported_with_the_fix_then_overrides_fix_them(tmp_path):
    def clash(d):
        d["volcano"]["ja"] = "火山"
        d["tiger"]["uk"] = d["tiger"]["el"]
    p = _table(tmp_path, clash)
    cfg = M3TranslationsConfig(path=str(p))
    with pytest.raises(TranslationError) as e:
        build_translations(tmp_path / "out", cfg)
    msg = str(e.value)
    assert "2 clash(es)" in msg and "Fix:" in msg
    assert "'火山' is volcano (n09472597) in ja and volcano (n09472597) in zh-CN" in msg
    assert "tiger (n02129604) in el and tiger (n02129604) in uk" in msg
    assert not (tmp_path / "out" / "translations.json").exists()
    over = tmp_path / "over.json"
    over.write_text(json.dumps({"volcano": {"ja": "かざん"}, "tiger": {"uk": "тигр"}},
                               ensure_ascii=False))
    rep = build_translations(tmp_path / "out", M3TranslationsConfig(path=str(p),
                                                                     overrides=str(over)))
    assert rep["overrides_applied"] == 2 and rep["classes"] == 16
    out = json.loads((tmp_path / "out" / "translations.json").read_text())
    assert out["volcano"]["ja"] == "かざん"


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d["hen"].pop("th"), r"'hen' \(n01514859\) lacks a translation for \['th'\]"),
    (lambda d: d["hen"].update(synset_id="n99999999"), "unknown ImageNet-1k synset"),
    (lambda d: d["hen"].update(cls_id=3), "cls_id 3, ImageNet-1k order says 8"),
])
def test_bad_tables_name_class_and_problem(tmp_path, mutate, match):
    with pytest.raises(TranslationError, match=match):
        build_translations(tmp_path / "o", M3TranslationsConfig(path=str(_table(tmp_path,
                                                                                 mutate))))


def test_unknown_language_code_is_a_config_error():
    from symile_data.config import ConfigError, from_dict
    with pytest.raises(ConfigError, match=r"unknown language code\(s\) \['xx'\]"):
        from_dict(M3TranslationsConfig, {"languages": ["en", "xx"]}, "params.yaml:m3_t")


def test_one_word_for_two_classes_is_a_clash(tmp_path):
    p = _table(tmp_path, lambda d: d["tiger"].update(ja=d["zebra"]["zh-CN"]))
    with pytest.raises(TranslationError, match="is tiger .* in ja and zebra .* in zh-CN"):
        build_translations(tmp_path / "o", M3TranslationsConfig(path=str(p)))


def test_bidi_marks_are_dropped_before_the_clash_check_and_the_output(tmp_path):
    # the same Greek word for two classes, one copy wrapped in bidi / zero-width marks
    marks = "\u200f\u202b\u2067\u200b"

    def mark(d):
        d["tiger"]["el"] = marks + d["zebra"]["el"] + "\u200e\u202c\u2069\ufeff"
        d["hen"]["ar"] = "\u200f" + d["hen"]["ar"] + "\u061c\u200e"
    with pytest.raises(TranslationError, match="is tiger .* in el and zebra .* in el"):
        build_translations(tmp_path / "o", M3TranslationsConfig(path=str(_table(tmp_path, mark))))

    def only_marks(d):     # no clash: the marked words are written without their marks
        d["tiger"]["el"] = "\u200e" + d["tiger"]["el"] + "\u200f\u00a0"
        d["hen"]["ar"] = "\u202b" + d["hen"]["ar"] + "\u202c"
    demo = json.loads((REPO / DEMO_TRANSLATIONS).read_text())
    build_translations(tmp_path / "ok", M3TranslationsConfig(
        path=str(_table(tmp_path, only_marks))))
    out = json.loads((tmp_path / "ok" / "translations.json").read_text())
    assert out["tiger"]["el"] == demo["tiger"]["el"] and out["hen"]["ar"] == demo["hen"]["ar"]
    text = (tmp_path / "ok" / "translations.json").read_text()
    assert not any(c in text for c in INVISIBLE)
    assert clean_text("a\u200d\u200cb") == "a\u200d\u200cb"    # ZWJ / ZWNJ spell words: kept


def test_class_subset(tmp_path):
    rep = build_translations(tmp_path, M3TranslationsConfig(classes=("n01443537", "n09472597")))
    assert rep["classes"] == 2
    with pytest.raises(TranslationError, match="n01440764"):
        build_translations(tmp_path, M3TranslationsConfig(classes=("n01440764",)))


class FakeResponse:
    def __init__(self, status, payload=None):
        self.status_code, self._payload, self.text = status, payload, "err"

    def json(self):
        return self._payload


def test_google_backend_caches_retries_and_unescapes(tmp_path, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)  # tenacity backoff and throttle
    calls = []

    def post(url, params, json, timeout):
        calls.append(json)
        if len(calls) == 1:
            return FakeResponse(429)  # rate limited once, then fine
        return FakeResponse(200, {"data": {"translations": [
            {"translatedText": f"{json['target']}:{q}&#39;s &amp;"} for q in json["q"]]}})

    tr = GoogleTranslator("KEY", tmp_path / "cache", min_interval_s=0, post=post)
    cfg = M3TranslationsConfig(backend="google", languages=("en", "el", "ja"),
                               classes=("n01443537", "n02012849"), cache_dir=str(tmp_path))
    build_translations(tmp_path / "out", cfg, translator=tr)
    out = json.loads((tmp_path / "out" / "translations.json").read_text())
    assert out["crane bird"]["ja"] == "ja:crane bird's &"  # homonym fix + HTML unescaped
    n = len(calls)
    assert n == 3  # one 429 retry + one batch per language
    build_translations(tmp_path / "out2", cfg, translator=tr)
    assert len(calls) == n  # served from the cache


def test_google_backend_gives_up_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)

    def post(*a, **k):
        raise ConnectionError("no network")

    tr = GoogleTranslator("KEY", tmp_path, min_interval_s=0, retries=2, post=post)
    with pytest.raises(TranslationError, match="gave up after 2 tries.*offline"):
        tr.translate(["goldfish"], "el")
    with pytest.raises(TranslationError, match="no API key"):
        GoogleTranslator("", tmp_path)


def test_hub_backend_offline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = M3TranslationsConfig(backend="hub", cache_dir=str(tmp_path / "hub"))
    with pytest.raises(TranslationError, match="arsaporta/symile-m3.*Offline"):
        build_translations(tmp_path / "o", cfg)
