"""One tiny M3 build (all five stages through their DVC entry points), shared by the tests."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import yaml

from symile_data.config import load_params

REPO = Path(__file__).resolve().parents[2]
REAL = REPO.parent / "shared" / "fixtures" / "m3-real"
P_MISSING = 0.4
SIZES = [6000, 1200, 600]


def write_params(path: Path, **sections) -> Path:
    """The repo's m3 sections with overrides ({section: {key: value}})."""
    base = {k: v for k, v in load_params(REPO / "params.yaml").items() if k.startswith("m3_")}
    for sec, over in sections.items():
        base[sec] = {**base[sec], **over}
    for sec in ("m3_demo", "m3_translations", "m3_clips"):
        for key in ("translations", "path", "sentences"):
            if key in base[sec] and not os.path.isabs(base[sec][key]):
                base[sec][key] = str(REPO / base[sec][key])
    path.write_text(yaml.safe_dump(base, allow_unicode=True))
    return path


def stage(name: str):
    """The DVC stage module pipelines/{name}.py."""
    spec = importlib.util.spec_from_file_location(name, REPO / "pipelines" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict[str, Path]:
    m3_demo, m3_translations, m3_images, m3_clips, m3_samples = (
        stage(f"m3_{s}") for s in ("demo", "translations", "images", "clips", "samples"))
    d = tmp_path_factory.mktemp("m3")
    params = write_params(
        d / "params.yaml",
        m3_demo={"images_per_class": 3, "image_size": 48},
        m3_images={"root": str(d / "demo" / "ILSVRC"), "resize": 40,
                   "scheduler": "synchronous"},
        m3_clips={"max_clips_per_lang": 2, "scheduler": "threads"},
        m3_samples={"ws": [2, 5, 10], "custom_sizes": {"demo": SIZES},
                    "missing_p": P_MISSING, "max_rows_per_shard": 2500})
    p = ["--params", str(params)]
    tr = ["--translations", str(d / "translations")]
    assert m3_demo.main(p + ["--out", str(d / "demo")]) == 0
    assert m3_translations.main(p + ["--out", str(d / "translations")]) == 0
    assert m3_images.main(p + tr + ["--out", str(d / "images")]) == 0
    assert m3_clips.main(p + tr + ["--out", str(d / "clips")]) == 0
    assert m3_samples.main(p + tr + ["--images", str(d / "images"), "--clips", str(d / "clips"),
                                     "--out", str(d / "samples"),
                                     "--wds-out", str(d / "wds")]) == 0
    return {"root": d, "params": params, "translations": d / "translations",
            "images": d / "images", "clips": d / "clips", "samples": d / "samples"}
