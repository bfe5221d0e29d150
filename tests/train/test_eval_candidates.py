"""Scale (issue 11): the M3 candidate scan keeps the distinct image keys and one batch, never
every row's key, and picks exactly the candidates of the whole-split computation."""
import numpy as np
import pyarrow as pa

from train_helpers import m3_table
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.reader import split_files
from symile_data.train import evaluate as E


def _split(tmp_path, n=300, n_keys=37):
    t = m3_table(n, "test", missing_p=0.3, seed=4)
    keys = [f"img-{(i * 7) % n_keys:03d}" for i in range(n)]       # repeats, out of order
    t = t.set_column(t.schema.get_field_index("image_key"), "image_key", pa.array(keys))
    write_parquet_dataset(tmp_path / "ds", {"test": t}, t.schema, name="t", params_hash="h",
                          spec=ShardSpec(max_rows_per_shard=110, row_group_rows=16))
    return split_files(tmp_path / "ds", "test"), t


def _whole(t):
    """The whole-split definition: np.unique's first row of each fully observed key."""
    observed = ~(np.asarray(t["image_missing"]) | np.asarray(t["audio_missing"])
                 | np.asarray(t["text_missing"]))
    keys = np.asarray(t["image_key"].to_pylist(), dtype=object)
    _, first = np.unique(keys[observed], return_index=True)
    return np.flatnonzero(observed)[first], observed, np.asarray(t["cls_id"])


def test_candidates_streamed_in_small_batches_equal_the_whole_split(tmp_path, monkeypatch):
    files, t = _split(tmp_path)
    assert len(files) == 3
    want = _whole(t)
    sizes = []
    real = E._first_per_key

    def spy(keys, rows):
        sizes.append(len(keys))
        return real(keys, rows)
    monkeypatch.setattr(E, "_first_per_key", spy)
    for batch in (7, 16, 1 << 16):
        monkeypatch.setattr(E, "CANDIDATE_BATCH", batch)
        sizes.clear()
        got = E.m3_candidates(files)
        for g, w in zip(got, want):
            assert np.array_equal(g, w)
        # merged per batch: at most the distinct keys so far plus one batch, never all rows
        assert max(sizes) <= 37 + batch
    assert 30 < len(want[0]) <= 37 and want[0].dtype == np.int64
