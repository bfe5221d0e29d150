"""Restriction is inherited, not labelled: MIMIC rows whose columns were renamed and written by
the project's own writer with a fresh manifest are still MIMIC-derived -- by lineage (the
writer inherits it) and by shape (publish and the exporters recognise an ECG, a CXR, the labs);
shards are inspected whatever the case of their suffix."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from symile_data.cli import main
from symile_data.io import lineage
from symile_data.io.manifest import marker_path, read_manifest
from symile_data.io.parquet import ShardSpec, write_parquet_dataset
from symile_data.io.reader import split_files
from symile_data.schema import mimic_samples_schema

def _load_publish_tests():
    """test_publish.py's fake Hub fixtures and refusal check (import mode: importlib)."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("publish_helpers",
                                                  Path(__file__).with_name("test_publish.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_helpers = _load_publish_tests()
_edit_manifest, _refused = _helpers._edit_manifest, _helpers._refused
online, recorder = _helpers.online, _helpers.recorder          # fixtures

SPEC = ShardSpec(max_rows_per_shard=7, row_group_rows=3)     # as tests/publish/conftest.py
RENAME = {"ecg": "x1", "cxr": "x2", "labs_percentiles": "x3", "labs_observed": "x4",
          "hadm_id": "row", "subject_id": "group"}


def fsl(values: np.ndarray, dtype: pa.DataType) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), type=dtype),
                                             values.shape[1])


def _real_shaped_rows(n: int, split: str, seed: int) -> pa.Table:
    """MIMIC rows at their real shapes (ECG 5000 x 12, CXR 320 x 320, 50 labs), columns
    renamed, built afresh from arrays: no schema stamp, no manifest, nothing says MIMIC but
    the values' shapes."""
    rng = np.random.default_rng(seed)
    return pa.table({
        "key": [f"{split}{i}" for i in range(n)], "split": [split] * n,
        "x1": fsl(rng.uniform(-1, 1, (n, 60_000)).astype(np.float32), pa.float32()),
        "x2": fsl(rng.integers(0, 256, (n, 102_400)).astype(np.uint8), pa.uint8()),
        "x3": fsl(rng.random((n, 50)).astype(np.float32), pa.float32()),
        "x4": fsl(rng.integers(0, 2, (n, 50)).astype(np.int8), pa.int8())})


def _write(d, splits):
    schema = next(iter(splits.values())).schema.remove_metadata()
    write_parquet_dataset(d, splits, schema, name="neutral", params_hash="n", spec=SPEC)
    return d


def test_renamed_mimic_refused_by_shape(tmp_path, recorder, capsys):  # noqa: F811
    d = _write(tmp_path / "neutral" / "n", {s: _real_shaped_rows(2, s, i)
                                           for i, s in enumerate(("train", "val"))})
    assert read_manifest(d)["flags"]["mimic_derived"] is False   # nothing to inherit from
    _refused([d.parent], capsys, d.parent,
             "column 'x1' holds 60000 values per row: an ECG (5000 x 12)")
    fake, built = recorder
    assert fake.calls == [] and built == []                # no client, no call: nothing sent
    assert main(["export-wds", str(d), "--out", str(tmp_path / "wds")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(d / "manifest.json") in err and "refusing to export" in err
    for why in ("'x1' holds 60000 values per row: an ECG (5000 x 12)",
                "'x2' holds 102400 values per row: a CXR image (320 x 320)",
                "'x3' holds 50 values per row: a vector of the 50 MIMIC labs"):
        assert why in err, why
    assert not (tmp_path / "wds").exists()


def test_variable_length_lists_and_wds_members_by_shape(tmp_path):
    """The footer cannot tell a list's length: the first row is read; a .npy member's header
    gives its shape."""
    from symile_data.publish.guard import mimic_evidence
    from symile_data.publish.wds_export import ParquetSampleSource
    from symile_data.io.wds import write_wds_dataset
    t = _real_shaped_rows(2, "train", 0)
    t = t.set_column(2, "x1", t["x1"].cast(pa.list_(pa.float32())))
    d = _write(tmp_path / "v", {"train": t})
    assert any("'x1' holds 60000 values in its first row: an ECG" in e for e in mimic_evidence(d))
    w = tmp_path / "w"
    write_wds_dataset(w, {"train": ParquetSampleSource(split_files(d, "train"), "train")},
                      name="neutral", params_hash="w")
    assert any("x2.npy has shape (102400,): a CXR image (320 x 320)" in e
               for e in mimic_evidence(w))


@pytest.mark.parametrize("how", ["read", "inputs", "schema"])
def test_writer_inherits_the_restriction(mimic_root, tmp_path, recorder, capsys, how):  # noqa: F811
    """Rows of a MIMIC dataset written by the project's writer with no flag, columns renamed:
    the output is MIMIC-derived whether the rows were read through the project's reader
    (read) or named as input (inputs); rows that keep their ``mimic_samples`` stamp (columns
    selected, as read from a shard) are too (schema). Publish refuses them naming the
    lineage; export-wds carries the restriction over."""
    root, splits = mimic_root()
    src = root / "samples"
    if how == "schema":      # rows as read from a stamped shard, some columns selected
        t = splits["train"].cast(mimic_samples_schema(36, 16, 5)).select(
            ["key", "split", "labs_percentiles", "labs_observed"])
    else:
        t = pq.read_table(split_files(src, "train"))
        t = t.rename_columns([RENAME.get(c, c) for c in t.column_names])
    if how != "read":
        lineage.reset()      # no read recorded: the lineage must come from elsewhere
    schema = pa.schema([f for f in t.schema])          # a "fresh" schema, no stamp
    write_parquet_dataset(tmp_path / "out" / "n", {"train": t}, schema, name="neutral",
                          params_hash="n", spec=SPEC, inputs=[src] if how == "inputs" else None)
    m = read_manifest(tmp_path / "out" / "n")
    assert m["flags"]["mimic_derived"] is True
    why = ("rows of schema 'mimic_samples'" if how == "schema"
           else "input 'symile-mimic-tiny'")
    assert why in m["flags"]["mimic_derived_by"]
    if how != "schema":
        assert m["inputs"] == [{"dir": str(src), "name": "symile-mimic-tiny",
                                "mimic_derived": True}]
    _refused([tmp_path / "out"], capsys, tmp_path / "out", why)
    assert main(["export-wds", str(tmp_path / "out"), "--out", str(tmp_path / "wds")]) == 0
    w = read_manifest(tmp_path / "wds" / "n")
    assert w["flags"]["mimic_derived"] is True and w["inputs"][0]["mimic_derived"] is True


def test_a_command_starts_with_no_restricted_reads(mimic_root, xor_root, tmp_path):
    """What one command read is no input of the next one in the same process."""
    root, _ = mimic_root()
    split_files(root / "samples", "train")                 # a restricted read ...
    assert main(["export-wds", str(xor_root / "p0.2"), "--out", str(tmp_path / "w")]) == 0
    m = read_manifest(tmp_path / "w")                         # ... is not this export's input
    assert m["flags"]["mimic_derived"] is False
    assert [e["name"] for e in m["inputs"]] == [read_manifest(xor_root / "p0.2")["name"]]


SCRUB = {"flags": {"mimic_derived": False}, "name": "innocent", "schema": None,
         "schema_arrow_b64": None, "extra": {}}


@pytest.mark.parametrize("suffix", [".PARQUET", ".Parquet", ".bin"])
def test_shard_inspected_whatever_its_suffix(mimic_root, recorder, capsys, suffix):  # noqa: F811
    """A shard named `.PARQUET` (or any other suffix) is read by content; one that is not
    Parquet or tar cannot be proven clean (it used to be skipped: manifest scrubbed, nothing
    else looked, publish went ahead)."""
    root, _ = mimic_root()
    d = root / "samples"
    m = read_manifest(d)
    for info in m["splits"].values():
        for entry in info["shards"]:
            old = d / entry["file"]
            entry["file"] = old.stem + suffix
            marker_path(old).rename(marker_path(d / entry["file"]))
            old.rename(d / entry["file"])
    (d / "manifest.json").write_text(json.dumps(m))
    _edit_manifest(d, **SCRUB)
    _refused([d], capsys, d, f"Parquet has MIMIC column(s) ['cxr', 'ecg', 'hadm_id', "
             f"'labs_observed', 'labs_percentiles', 'subject_id'] in shard "
             f"test-00000-of-00002{suffix}")
    assert recorder[0].calls == []
    for entry in m["splits"]["train"]["shards"]:         # neither Parquet nor tar: unprovable
        (d / entry["file"]).write_bytes(b"\0" * 16)
    _refused([d], capsys, d, f"neither Parquet nor tar ({suffix}); cannot prove it is not MIMIC"
             if suffix == ".bin" else "unreadable Parquet footer (ArrowInvalid); cannot prove "
             f"it is not MIMIC in shard train-00000-of-00002{suffix}")
