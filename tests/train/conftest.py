import os

import pytest
import torch

os.environ.setdefault("SYMILE_DATA_PROGRESS", "off")
torch.set_num_threads(1)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def write_dataset(out, splits, name="tiny", row_group_rows=64, extra=None):
    """Write {split: pa.Table} as a Parquet dataset dir with a manifest (foundation writer)."""
    from symile_data.io.parquet import ShardSpec, write_parquet_dataset
    schema = next(iter(splits.values())).schema
    write_parquet_dataset(out, splits, schema, name=name, params_hash="0" * 16,
                          spec=ShardSpec(max_rows_per_shard=10_000, row_group_rows=row_group_rows),
                          extra=extra)
    return out


@pytest.fixture
def xor_dir(tmp_path):
    import numpy as np
    from symile_data.xor import generate_xor
    splits = {s: generate_xor(n, 3, 1.0, np.random.default_rng(k), s)
              for k, (s, n) in enumerate((("train", 256), ("val", 64), ("test", 128)))}
    return write_dataset(tmp_path / "xor", splits, extra={"d_v": 3, "p": 1.0})


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory):
    """A random 2-layer XLM-R saved with save_pretrained (loaded back by path)."""
    from transformers import XLMRobertaConfig, XLMRobertaModel
    torch.manual_seed(0)
    cfg = XLMRobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=32,
                           max_position_embeddings=40, bos_token_id=0, pad_token_id=1,
                           eos_token_id=2)
    path = tmp_path_factory.mktemp("tiny-xlmr")
    XLMRobertaModel(cfg).save_pretrained(path)
    return path


def m3_table(n, split, l=8, d_img=8, d_aud=6, n_cls=4, missing_p=0.0, seed=0):
    """Rows with the M3 training-shard column contract (features joined)."""
    import numpy as np
    import pyarrow as pa
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, n_cls, n).astype(np.int16)

    def vec(x, t):
        return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), t), x.shape[1])

    ids = rng.integers(3, 50, (n, l)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 0, 2
    miss = {m: rng.random(n) < missing_p for m in ("image", "audio", "text")}
    return pa.table({
        "key": [f"{split}-{i}" for i in range(n)], "split": [split] * n,
        "cls_id": pa.array(cls), "image_key": [f"img-{c}-{i % 3}" for i, c in enumerate(cls)],
        "image_missing": miss["image"], "audio_missing": miss["audio"],
        "text_missing": miss["text"],
        "image_feat": vec(rng.normal(size=(n, d_img)).astype(np.float16), pa.float16()),
        "audio_feat": vec(rng.normal(size=(n, d_aud)).astype(np.float16), pa.float16()),
        "text_input_ids": vec(ids, pa.int32()),
        "text_attention_mask": vec(np.ones((n, l), np.int8), pa.int8())})
