"""Tiny dataset writers shared by the training tests."""
def write_dataset(out, splits, name="tiny", row_group_rows=64, extra=None):
    """Write {split: pa.Table} as a Parquet dataset dir with a manifest (foundation writer)."""
    from symile_data.io.parquet import ShardSpec, write_parquet_dataset
    schema = next(iter(splits.values())).schema
    write_parquet_dataset(out, splits, schema, name=name, params_hash="0" * 16,
                          spec=ShardSpec(max_rows_per_shard=10_000, row_group_rows=row_group_rows),
                          extra=extra)
    return out


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


def mimic_table(n, split, seed):
    """Rows with the MIMIC training-shard column contract (tiny ECG / CXR / labs)."""
    import numpy as np
    import pyarrow as pa
    rng = np.random.default_rng(seed)

    def vec(x, t):
        return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), t), x.shape[1])

    hadm = np.arange(n, dtype=np.int64) + 1000 * (seed + 1)
    return pa.table({"key": [str(h) for h in hadm], "hadm_id": hadm, "split": [split] * n,
                     "ecg": vec(rng.uniform(-1, 1, (n, 32 * 12)).astype(np.float32),
                                pa.float32()),
                     "cxr": vec(rng.integers(0, 256, (n, 32 * 32)).astype(np.uint8),
                                pa.uint8()),
                     "labs_percentiles": vec(rng.random((n, 50)).astype(np.float32),
                                             pa.float32()),
                     "labs_observed": vec(rng.integers(0, 2, (n, 50)).astype(np.int8),
                                          pa.int8())})
