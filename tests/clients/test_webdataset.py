"""webdataset and wids as clients: our tars stream through ``wds.WebDataset(...).decode()``
with the standard decoders (.jpg PIL, .npy, .json, .txt; .wav by a soundfile handler, since
webdataset's own audio decoder needs torchaudio) and open for indexed access through the
``.{split}.wids.json`` shard index written next to them."""
from __future__ import annotations

import io
from functools import partial

import numpy as np
import pytest
from PIL import Image

from symile_data.io.manifest import read_manifest
from symile_data.io.reader import ParquetMapDataset, split_files
from symile_data.io.wds import wids_index_path
from symile_data.publish.wds_export import export_wds

wds = pytest.importorskip("webdataset")
wids = pytest.importorskip("wids")


def soundfile_wav(key: str, data: bytes):
    """webdataset handler: .wav -> (float32 samples, sample rate)."""
    if key.rsplit(".", 1)[-1].lower() != "wav":
        return None
    import soundfile as sf
    return sf.read(io.BytesIO(data), dtype="float32")


def stream(d, split):
    tars = [str(d / s["file"]) for s in read_manifest(d)["splits"][split]["shards"]]
    return list(wds.WebDataset(tars, shardshuffle=False, empty_check=False)
                .decode("pil", soundfile_wav))


def indexed(d, split, cache):
    return wids.ShardListDataset(str(wids_index_path(d, split)), cache_dir=str(cache),
                                 transformations=partial(wids.wids_decode.default_decoder,
                                                         format="PIL"))


def test_m3_samples_tars_decode(chain):
    d = chain / "data/m3/samples/wds/symile-m3-2-demo"
    for split, info in read_manifest(d)["splits"].items():
        samples = stream(d, split)
        assert len(samples) == info["rows"]
        s = samples[0]
        assert isinstance(s["jpg"], Image.Image) and s["jpg"].mode == "RGB"
        wav, sr = s["wav"]
        assert sr > 0 and wav.ndim == 1 and len(wav) > 0
        assert s["json"]["text"] == s["txt"] and s["json"]["key"].startswith(split)


def test_mimic_tars_decode_npy(chain):
    d = chain / "data/mimic/shards/symile-mimic-wds"
    s = stream(d, "val")[0]
    assert s["ecg.npy"].shape == (5000, 12) and s["ecg.npy"].dtype == np.float32
    assert isinstance(s["cxr.jpg"], Image.Image)
    assert isinstance(s["json"], dict)


def test_export_wds_of_features_and_embedded_media(chain, tmp_path):
    out = tmp_path / "wds"
    export_wds(chain / "data/m3/shards", out / "shards", samples_per_shard=30)
    export_wds(chain / "data/m3/samples", out / "samples", samples_per_shard=30)
    name = "symile-m3-2-demo"
    src = ParquetMapDataset(split_files(chain / "data/m3/shards" / name, "val")).read_all()
    got = stream(out / "shards" / name, "val")
    by_key = {s["json"]["key"]: s for s in got}
    for i, key in enumerate(src["key"]):
        np.testing.assert_array_equal(by_key[key]["image_feat.npy"], src["image_feat"][i].numpy())
        np.testing.assert_array_equal(by_key[key]["text_input_ids.npy"],
                                      src["text_input_ids"][i].numpy())
    media = stream(out / "samples" / name, "val")[0]
    assert isinstance(media["image.jpg"], Image.Image) and media["audio.wav"][1] > 0
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(out / "samples"), name, split="validation")   # card at OUT
    assert ds.num_rows == 32 and isinstance(ds.features["image.jpg"], datasets.Image)


@pytest.mark.parametrize("rel", ["data/m3/samples/wds/symile-m3-2-demo",
                                 "data/mimic/shards/symile-mimic-wds"])
def test_wids_indexed_access(chain, tmp_path, rel):
    d = chain / rel
    for split, info in read_manifest(d)["splits"].items():
        keys = [s["__key__"] for s in stream(d, split)]
        ds = indexed(d, split, tmp_path / "cache")
        assert len(ds) == info["rows"]
        for i in (0, len(ds) - 1, len(ds) // 2):          # random access across shards
            assert ds[i]["__key__"] == keys[i]
        assert any(isinstance(v, Image.Image) for v in ds[len(ds) - 1].values())
    assert not list(d.glob("*.lock"))                      # wids works in its cache dir
