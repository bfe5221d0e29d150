"""Speech: espeak-ng language checks, gTTS through a fake, Common Voice folders, sentence pool."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from symile_data.m3 import speech
from symile_data.m3.build import build_clips
from symile_data.m3.clips import common_voice_clip, common_voice_items, load_sentences, make_clip
from symile_data.m3.config import M3ClipsConfig
from symile_data.m3.translations import ALL_LANGS

SENTENCES = json.loads(Path(speech.__file__).parents[1].joinpath(
    "resources", "m3", "sentences.json").read_text(encoding="utf-8"))
GREEK = "Καλημέρα, τι κάνεις σήμερα;"


@pytest.mark.parametrize("lang", ALL_LANGS)
def test_own_voice_passes_the_language_check_for_every_m3_language(lang):
    for text in SENTENCES[lang][:2]:
        speech.check_espeak_language(speech.prepare_text(text, lang), lang,
                                     speech.ESPEAK_VOICES[lang])
    assert speech.ESPEAK_VOICES["zh-CN"] == "cmn-latn-pinyin"


def test_voice_of_another_language_is_refused_by_content(monkeypatch):
    with pytest.raises(speech.SpeechError, match="speaks 'en', not el"):
        speech.check_espeak_language(GREEK, "el", "en-us")
    for lang, voice in (("uk", "ru"), ("hi", "mr"), ("el", "grc"), ("zh-CN", "yue")):
        with pytest.raises(speech.SpeechError, match=f"not {lang}"):
            speech.check_espeak_language(SENTENCES[lang][0], lang, voice)
    # the phonemes alone give it away: an English voice spells Greek letters by name
    sim = speech.phoneme_similarity(speech.espeak_phonemes(GREEK, "el"),
                                    speech.espeak_phonemes(GREEK, "en-us"))
    assert sim < 0.3 < speech.MIN_PHONEME_SIMILARITY
    monkeypatch.setitem(speech.ESPEAK_PRIMARY, "el", ("el", "en"))   # code check passed ...
    with pytest.raises(speech.SpeechError, match="does not speak el: .* match the el voice"):
        speech.check_espeak_language(GREEK, "el", "en-us")         # ... phonemes refuse it
    # accent variants of the language itself pass
    speech.check_espeak_language(SENTENCES["en"][0], "en", "en-gb")
    speech.check_espeak_language(SENTENCES["en"][1], "en", "en-029")


def test_wrong_voice_is_a_failed_clip_naming_it(tmp_path, built):
    cfg = M3ClipsConfig(languages=("en", "el"), voices={"el": "en-us"}, max_clips_per_lang=2,
                        scheduler="synchronous")
    rep = build_clips(tmp_path, cfg, built["translations"])
    assert rep["by_language"]["el"] == {"ok": 0, "failed": 2, "dropped": 0}
    assert rep["by_language"]["en"]["ok"] == 2 and rep["languages_without_clips"] == ["el"]
    table = pq.read_table(tmp_path / "clips.parquet").to_pandas()
    el = table[table["lang"] == "el"]
    assert (el["status"] == "failed").all() and el["path"].isna().all()
    for key, err in zip(el["audio_key"], el["error"]):
        assert err.startswith(f"clip {key}: ") and "not el" in err
    assert len(list((tmp_path / "files").rglob("*.wav"))) == 2      # only the English clips
    assert all(e["lang"] == "el" for e in rep["failed_examples"])


def test_espeak_refuses_english_fallback():
    with pytest.raises(speech.SpeechError, match="falls back to \\['en'\\]"):
        speech.check_no_fallback("今日は", "ja")          # kanji under the ja voice
    speech.check_no_fallback(speech.prepare_text("今日は晴れ", "ja"), "ja")  # as kana: fine
    assert speech.prepare_text("明日", "ja") == "あした"
    speech.check_no_fallback("你好世界", "cmn-latn-pinyin")
    with pytest.raises(speech.SpeechError, match="falls back"):
        speech.check_no_fallback("你好世界", "cmn")      # Mandarin, latin-as-English voice
    with pytest.raises(speech.SpeechError, match="no voice 'xx-nope'"):
        speech.check_voice("xx-nope", "th")


def test_espeak_clip_is_cached_by_content(tmp_path):
    item = ("Καλημέρα.", "el", "espeak-ng", "el")
    row = make_clip(item, str(tmp_path))
    assert row["status"] == "ok" and row["duration_s"] > 0.2 and row["sample_rate"] == 22050
    assert row["audio_key"] == speech.audio_key(*item)
    f = tmp_path / row["path"]
    mtime = f.stat().st_mtime_ns
    assert make_clip(item, str(tmp_path))["audio_key"] == row["audio_key"]
    assert f.stat().st_mtime_ns == mtime  # reused, not re-synthesised
    bad = make_clip(("漢字だけ", "ja", "espeak-ng", "ja"), str(tmp_path))
    assert bad["status"] == "ok"  # converted to kana first
    bad = make_clip(("漢字", "zh-CN", "espeak-ng", "cmn"), str(tmp_path))
    assert bad["status"] == "failed" and "falls back" in bad["error"]


class FakeGTTS:
    calls = 0
    fail_first = 0

    langs: list = []

    def __init__(self, text, lang, tld):
        self.text, self.lang = text, lang
        FakeGTTS.langs.append(lang)

    def save(self, path):
        from gtts.tts import gTTSError
        FakeGTTS.calls += 1
        if FakeGTTS.fail_first:
            FakeGTTS.fail_first -= 1
            raise gTTSError("429 (Too Many Requests)")
        sf.write(path, np.zeros(1600, np.float32), 16000, format="WAV")


def test_gtts_path_retries_caches_and_reports_offline(tmp_path, monkeypatch, built):
    monkeypatch.setattr("time.sleep", lambda s: None)
    FakeGTTS.calls, FakeGTTS.fail_first = 0, 1
    cfg = M3ClipsConfig(engine="gtts", languages=("en", "el"), max_clips_per_lang=2,
                        throttle_s=0.0)
    rep = build_clips(tmp_path, cfg, built["translations"], gtts_cls=FakeGTTS)
    assert rep["by_language"]["en"]["ok"] == 2 and FakeGTTS.calls == 5  # 4 clips + 1 retry
    table = pq.read_table(tmp_path / "clips.parquet").to_pandas()
    assert (table["engine"] == "gtts").all() and table["path"].str.endswith(".mp3").all()
    build_clips(tmp_path, cfg, built["translations"], gtts_cls=FakeGTTS)
    assert FakeGTTS.calls == 5  # cached
    FakeGTTS.fail_first = 99
    row = make_clip(("Hello there.", "en", "gtts", "en"), str(tmp_path / "x"), retries=2,
                    gtts_cls=FakeGTTS)
    assert row["status"] == "failed" and "offline?" in row["error"]


def test_gtts_language_code_is_checked_and_sent(tmp_path):
    FakeGTTS.calls, FakeGTTS.fail_first, FakeGTTS.langs = 0, 0, []
    row = make_clip(("Доброго ранку.", "uk", "gtts", "ru"), str(tmp_path), gtts_cls=FakeGTTS)
    assert row["status"] == "failed" and "gTTS language 'ru' is not uk" in row["error"]
    assert row["error"].startswith(f"clip {row['audio_key']}: ") and FakeGTTS.calls == 0
    row = make_clip(("Hi.", "en", "gtts", "xx"), str(tmp_path), gtts_cls=FakeGTTS)
    assert row["status"] == "failed" and "no language 'xx'" in row["error"]
    for voice in ("zh-CN", "zh"):
        assert make_clip(("你好。", "zh-CN", "gtts", voice), str(tmp_path),
                         gtts_cls=FakeGTTS)["status"] == "ok"
    assert FakeGTTS.langs == ["zh-CN", "zh"]          # the checked code is the one sent


def test_common_voice_clip_of_another_locale_is_refused(tmp_path):
    d = tmp_path / "uk" / "clips"
    d.mkdir(parents=True)
    for name in ("common_voice_uk_1.wav", "common_voice_ru_2.wav", "x.wav"):
        sf.write(d / name, np.full(800, 0.1, np.float32), 16000, format="WAV")
    (tmp_path / "uk" / "validated.tsv").write_text(
        "path\tsentence\tlocale\ncommon_voice_uk_1.wav\ta\tuk\n"
        "common_voice_ru_2.wav\tb\t\nx.wav\tc\tru\n")
    rows = {it[1]: common_voice_clip(it) for it in common_voice_items(tmp_path, ["uk"], 0, 0)}
    assert rows["a"]["status"] == "ok"
    for text, loc, name in (("b", "ru", "common_voice_ru_2.wav"), ("c", "ru", "x.wav")):
        assert rows[text]["status"] == "failed"
        assert rows[text]["error"] == (f"Common Voice clip {d / name}: locale '{loc}' is not "
                                       f"uk; refused")


def _cv(root, lang, clips):
    d = root / lang / "clips"
    d.mkdir(parents=True)
    lines = ["client_id\tpath\tsentence"]
    for name, frames in clips:
        if frames is None:
            (d / name).write_bytes(b"not audio")
        else:
            sf.write(d / name, np.full(frames, 0.1, np.float32), 16000, format="WAV")
        lines.append(f"c\t{name}\tsentence {name}")
    (root / lang / "validated.tsv").write_text("\n".join(lines) + "\n")


def test_common_voice_drops_zero_duration_and_records_failures(tmp_path, built):
    root = tmp_path / "cv"
    _cv(root, "en", [("a.wav", 8000), ("b.wav", 0), ("c.wav", None)])
    _cv(root, "el", [("d.wav", 4000)])
    cfg = M3ClipsConfig(engine="common_voice", languages=("en", "el"),
                        common_voice_root=str(root), scheduler="synchronous")
    rep = build_clips(tmp_path / "out", cfg, built["translations"])
    assert rep["by_language"]["en"] == {"ok": 1, "failed": 1, "dropped": 1}
    t = pq.read_table(tmp_path / "out" / "clips.parquet").to_pandas().set_index("text")
    assert t.loc["sentence b.wav", "error"] == "zero duration"
    assert t.loc["sentence a.wav", "duration_s"] == pytest.approx(0.5)
    with pytest.raises(FileNotFoundError, match="validated.tsv"):
        build_clips(tmp_path / "o2", M3ClipsConfig(engine="common_voice", languages=("ko",),
                                                   common_voice_root=str(root)),
                    built["translations"])


def test_sentence_pool_errors(tmp_path):
    rows = [{"en": "tiger", "el": "τίγρη", "ja": "トラ"}]
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"en": ["Hello there."], "el": []}))
    with pytest.raises(ValueError, match="empty sentence pool for language 'el'"):
        load_sentences(p, ["en", "el"], rows)
    p.write_text(json.dumps({"en": ["A tiger, sleeping."], "ja": ["トラがいます"]}))
    with pytest.raises(ValueError, match="names class 'tiger'"):
        load_sentences(p, ["en"], rows)
    with pytest.raises(ValueError, match="names class 'tiger'"):
        load_sentences(p, ["ja"], rows)
    assert load_sentences(p, ["en"], [{"en": "tig", "el": "x"}]) == {"en": ["A tiger, sleeping."]}
    p.write_text(json.dumps({"xx": ["hi"]}))
    with pytest.raises(ValueError, match=r"unknown language code\(s\) \['xx'\]"):
        load_sentences(p, ["en"], rows)


def test_mp3_cut_short_with_its_header_intact_is_a_failed_clip(tmp_path):
    """An MP3 cut to 40% keeps its Xing header's length (2 s): the decodable audio (~0.5 s)
    is what counts, so the clip is failed naming the file, not "ok" with the header's 2 s."""
    x = (np.sin(np.arange(22050 * 2) * 0.05) * 0.3).astype(np.float32)
    whole = tmp_path / "whole.mp3"
    sf.write(whole, x, 22050, format="MP3")
    cut = tmp_path / "common_voice_en_1.mp3"
    cut.write_bytes(whole.read_bytes()[:int(whole.stat().st_size * 0.4)])
    assert speech.clip_info(whole) == (22050, 2.0)
    with pytest.raises(speech.SpeechError, match=r"common_voice_en_1.mp3: truncated audio: 0\.\d+ s"):
        speech.clip_info(cut)
    row = common_voice_clip(("en", "hello", str(cut), "en"))
    assert row["status"] == "failed" and "truncated audio" in row["error"], row
    assert row["duration_s"] is None
