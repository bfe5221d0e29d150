"""Feature extraction split over 2 workers equals the single-process tables byte for byte."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "train")]     # spawned ranks import these
from dist_workers import spawn  # noqa: E402
from parts_workers import encode_rank  # noqa: E402

from symile_data.features.m3 import encode_m3  # noqa: E402
from symile_data.features.parts import encode_media_parts  # noqa: E402


def _files(d: Path) -> dict[str, bytes]:
    # report.json holds wall times; everything else must match byte for byte
    return {str(f.relative_to(d)): f.read_bytes() for f in sorted(d.rglob("*"))
            if f.is_file() and f.name != "report.json"}


def _setup(tmp_path, kit, models):
    kit.make_media(tmp_path / "media", n_images=7, n_clips=5)
    kit.make_samples(tmp_path / "samples", "symile-m3-2-xs", n_images=7, n_clips=5)
    cfg = kit.features_cfg(models, items_per_part=2)        # 4 image parts, 3 audio parts
    single = tmp_path / "single"
    encode_m3(cfg, tmp_path / "media" / "m3_images.parquet",
              tmp_path / "media" / "m3_clips.parquet", tmp_path / "samples", single)
    return cfg, _files(single)


def test_two_torchrun_ranks_equal_one_process(tmp_path, kit, tiny_models):
    cfg, single = _setup(tmp_path, kit, tiny_models)
    spawn(encode_rank, 2, cfg, str(tmp_path), str(tmp_path / "two"))
    two = _files(tmp_path / "two")
    assert sum(k.endswith(".parquet") for k in two) == 4 + 3 + 1
    assert two == single


def test_worker_parts_are_disjoint_and_merge(tmp_path, kit, tiny_models):
    """Independent workers (any launcher): each writes only its parts; the merge encodes
    nothing and gives the single-process bytes."""
    cfg, single = _setup(tmp_path, kit, tiny_models)
    media, out = tmp_path / "media", tmp_path / "parts"
    rep = encode_media_parts(cfg, media / "m3_images.parquet", media / "m3_clips.parquet",
                             tmp_path / "samples", out, (1, 2))
    names = sorted(p.name for p in (out / "image").rglob("part-*.parquet"))   # 7 items, 2 a part
    assert names == ["part-00001.parquet", "part-00003.parquet"]
    # parts 1 and 3: img002, img003 and the corrupt img006 (recorded as failed)
    assert rep["image"]["encoded_this_run"] == 2 and not list(out.rglob("manifest.json"))
    encode_media_parts(cfg, media / "m3_images.parquet", media / "m3_clips.parquet",
                       tmp_path / "samples", out, (0, 2))
    merged = encode_m3(cfg, media / "m3_images.parquet", media / "m3_clips.parquet",
                       tmp_path / "samples", out)
    assert merged["modalities"]["image"]["encoded_this_run"] == 0
    assert _files(out) == single
