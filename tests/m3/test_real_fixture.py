"""Optional: the real fixture ../shared/fixtures/m3-real (126 ImageNet classes, 10 languages)."""
from __future__ import annotations

import pytest

from symile_data.m3.build import build_images, build_translations
from symile_data.m3.config import M3ImagesConfig, M3TranslationsConfig
from symile_data.m3.translations import TranslationError, find_clashes, normalise, read_translations

from .conftest import REAL

pytestmark = [pytest.mark.real_fixture,
              pytest.mark.skipif(not REAL.exists(), reason="../shared/fixtures/m3-real absent")]


def test_real_translations_report_the_ten_ja_zh_clashes(tmp_path):
    cfg = M3TranslationsConfig(path=str(REAL / "translations.json"))
    with pytest.raises(TranslationError) as e:
        build_translations(tmp_path, cfg)
    assert "10 clash(es)" in str(e.value) and "'火山' is volcano" in str(e.value)
    rows = normalise(read_translations(REAL / "translations.json"), cfg.languages, "real")
    clashes = find_clashes(rows, cfg.languages)
    # 7 same-class ja/zh-CN strings, ja 豹 jaguar = zh-CN 豹 leopard, and two same-language
    # duplicates (el γερανός for both cranes, th ขีปนาวุธ for missile and projectile)
    langs = [sorted({u["lang"] for u in c["uses"]}) for c in clashes]
    assert len(clashes) == 10 and langs.count(["ja", "zh-CN"]) == 8


def test_real_images_decode(tmp_path):
    import json
    table = read_translations(REAL / "translations.json")
    # kana overrides are not needed to read images: keep the classes, drop the clash check
    syns = sorted(v["synset_id"] for v in table.values())[:20]
    (tmp_path / "tr").mkdir()
    (tmp_path / "tr" / "translations.json").write_text(json.dumps(
        {k: v for k, v in table.items() if v["synset_id"] in syns}, ensure_ascii=False))
    rep = build_images(tmp_path / "img", M3ImagesConfig(root=str(REAL), resize=64,
                                                        scheduler="synchronous"), tmp_path / "tr")
    assert rep["ok"] == 20 and rep["failed"] == 0
