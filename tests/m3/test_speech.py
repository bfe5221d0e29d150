"""Speech: espeak-ng language checks, gTTS through a fake, Common Voice folders, sentence pool."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from symile_data.m3 import speech
from symile_data.m3.build import build_clips
from symile_data.m3.clips import load_sentences, make_clip
from symile_data.m3.config import M3ClipsConfig


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

    def __init__(self, text, lang, tld):
        self.text, self.lang = text, lang

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
