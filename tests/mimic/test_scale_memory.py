"""Bounded memory at full MIMIC size, proved at toy size (issue 11, second round): the labevents
reader never runs far ahead of the writer, the cohort builds path strings only for the records
it checks, and the shard writer takes one row group at a time -- with unchanged bytes."""
from __future__ import annotations

import time

import numpy as np
import pyarrow.parquet as pq

from symile_data.io.parquet import ShardSpec, TableSource, write_parquet_dataset
from symile_data.mimic import cohort_steps as steps_mod
from symile_data.mimic import labevents
from symile_data.mimic.cohort import build_cohort
from symile_data.mimic.config import CohortConfig
from symile_data.schema import xor_schema
from symile_data.xor import generate_xor

from tests.mimic.test_scale import random_labevents

CFG = CohortConfig(train_size=0.5, val_size=0.25, seed=0, ecg_check_threads=2)


def _convert_slowly(tmp_path, monkeypatch, ahead: int) -> labevents.ReadGate:
    """Convert a ~100-block file with a slow Parquet writer; returns the reader's gate."""
    csv = tmp_path / "labevents.csv.gz"
    if not csv.exists():
        random_labevents(csv, n_rows=12_000)
    gates = []

    class Gate(labevents.ReadGate):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            gates.append(self)

    real_write = pq.ParquetWriter.write_table

    def slow_write(self, table, *a, **k):
        time.sleep(0.004)                               # the writer is the slow side
        return real_write(self, table, *a, **k)

    monkeypatch.setattr(labevents, "ReadGate", Gate)
    monkeypatch.setattr(pq.ParquetWriter, "write_table", slow_write)
    out = tmp_path / f"labevents-{ahead}.parquet"
    labevents.convert_labevents(csv, out, block_bytes=4096, ahead=ahead)
    monkeypatch.undo()
    assert pq.ParquetFile(out).metadata.num_row_groups > 50
    return gates[0]


def test_labevents_reader_stays_near_the_writer(tmp_path, monkeypatch):
    gate = _convert_slowly(tmp_path, monkeypatch, ahead=2)
    assert gate.batches > 50 and gate.max_lead <= 2       # <= 2 blocks read but not written
    # without the gate Arrow's reader runs ahead (its queue holds up to 32 blocks): the bound
    # above is what the gate adds
    assert _convert_slowly(tmp_path, monkeypatch, ahead=10_000).max_lead > 8
    a, b = (pq.read_table(tmp_path / f"labevents-{k}.parquet") for k in (2, 10_000))
    assert a.equals(b) and a.num_rows == 12_000


def test_labevents_bad_row_stops_the_reader(tmp_path):
    """A parse error mid-file: one MimicInputError naming the file; the reader thread ends
    (no Python read left running) and no Parquet file is left behind."""
    import gzip
    csv = tmp_path / "labevents.csv.gz"
    random_labevents(csv, n_rows=3000)
    text = gzip.open(csv, "rt").read().splitlines()
    text[2000] = text[2000] + ",extra,fields"
    with gzip.open(csv, "wt") as f:
        f.write("\n".join(text) + "\n")
    import pytest
    with pytest.raises(labevents.MimicInputError, match="labevents.csv.gz: bad labevents row"):
        labevents.convert_labevents(csv, tmp_path / "l.parquet", block_bytes=4096)
    assert not (tmp_path / "l.parquet").exists()


def test_cohort_builds_paths_only_for_checked_records(tmp_path, monkeypatch):
    """No Python string per record: strings (ECG paths, dicom_ids, CXR paths) are built for the
    records checked and the cohort rows only, a small share of the record lists here."""
    from symile_data.mimic.synth_scale import synth_scale_tree
    r = tmp_path / "raw"
    synth_scale_tree(r, 600, rows_per_admission=60, p_cxr=0.05, chunk=200)
    built = []
    real_taker, real_relpath = steps_mod.taker, steps_mod.cxr_relpath
    monkeypatch.setattr(steps_mod, "taker", lambda v: lambda idx: (
        built.append(len(idx)), real_taker(v)(idx))[1])
    monkeypatch.setattr(steps_mod, "cxr_relpath", lambda *a: (
        built.append(len(a[0])), real_relpath(*a))[1])
    rep = build_cohort(r / "mimic-iv", r / "mimic-iv-ecg", r / "mimic-cxr-jpg", tmp_path / "c",
                       CFG)
    checked = rep["ecg"]["records_checked"] + len(pq.read_table(tmp_path / "c/cxr_checks.parquet"))
    records = rep["ecg"]["records"] + rep["cxr"]["frontal_rows"]
    # a checked record: path (and dicom_id) when checked and in its checks table; a cohort
    # row: ECG path, dicom_id, CXR path (+ its dicom_id)
    assert rep["cohort"]["admissions"] > 0
    assert sum(built) <= 4 * checked + 4 * rep["cohort"]["admissions"] < records


class _Counting(TableSource):
    """A source with big rows: asks the writer for at most ``max_take_rows`` per take."""

    def __init__(self, table, max_take_rows):
        super().__init__(table)
        self.max_take_rows, self.takes = max_take_rows, []

    def take_range(self, start, stop):
        self.takes.append(stop - start)
        return super().take_range(start, stop)


def test_shard_writer_takes_row_groups_same_bytes(tmp_path):
    rng = np.random.default_rng(0)
    splits = {"train": generate_xor(1000, 5, 0.5, rng, "train"),
              "val": generate_xor(0, 5, 0.5, rng, "val")}
    spec = ShardSpec(max_rows_per_shard=300, row_group_rows=64)
    write_parquet_dataset(tmp_path / "whole", splits, xor_schema(5), name="t",
                          params_hash="h", spec=spec)
    src = {k: _Counting(v, 64) for k, v in splits.items()}
    write_parquet_dataset(tmp_path / "rg", src, xor_schema(5), name="t", params_hash="h",
                          spec=spec)
    assert max(src["train"].takes) <= 64 and len(src["train"].takes) > 16
    names = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "rg").iterdir())
    for n in names:                                      # shards, markers, manifest
        assert (tmp_path / "whole" / n).read_bytes() == (tmp_path / "rg" / n).read_bytes(), n
    f = pq.ParquetFile(tmp_path / "rg" / "train-00000-of-00004.parquet")
    assert [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)] == \
        [64] * 4 + [44]
    assert pq.read_table(tmp_path / "rg" / "val-00000-of-00001.parquet").num_rows == 0


def test_mimic_shards_take_one_row_group(synth_small, tmp_path, monkeypatch):
    """build_shards never asks for more rows than one row group (a shard is 50 rows here)."""
    from symile_data.mimic.build import SampleRows, build_shards
    from symile_data.mimic.config import ShardsConfig
    r = synth_small
    build_cohort(r / "mimic-iv", r / "mimic-iv-ecg", r / "mimic-cxr-jpg", tmp_path / "c", CFG)
    takes = []
    real = SampleRows.take_range
    monkeypatch.setattr(SampleRows, "take_range",
                        lambda self, a, b: (takes.append(b - a), real(self, a, b))[1])
    rep = build_shards(tmp_path / "c", r / "mimic-iv-ecg", r / "mimic-cxr-jpg", tmp_path / "s",
                       ShardsConfig(max_rows_per_shard=50, row_group_rows=8))
    assert rep["ok"] > 50 and max(takes) <= 8 and sum(takes) >= rep["ok"]


def test_labs_join_takes_only_the_batch_subjects(tmp_path, monkeypatch):
    """Each batch is joined with the (admission, lab) slots of its own subjects only, and the
    answer equals the whole-table join."""
    from symile_data.mimic.config import LAB_ITEMIDS
    from tests.mimic.test_scale import H, whole_table_labs
    csv = tmp_path / "labevents.csv.gz"
    t0 = random_labevents(csv, n_rows=3000)
    out = labevents.convert_labevents(csv, tmp_path / "l.parquet", block_bytes=4096)
    rng = np.random.default_rng(2)
    subj = 10_000_000 + rng.integers(0, 14, 60)
    admit = t0 + rng.integers(0, 40, 60) * 6 * H
    calls = []
    real = labevents.window_ranges

    def spy(g, t, tie, qg, qlo, qhi):
        calls.append((len(np.unique(np.asarray(g) // len(LAB_ITEMIDS))), len(qg)))
        return real(g, t, tie, qg, qlo, qhi)
    monkeypatch.setattr(labevents, "window_ranges", spy)
    got = labevents.stream_cohort_labs(out, LAB_ITEMIDS, subj, admit - 24 * H, admit + 24 * H,
                                       batch_rows=40)
    np.testing.assert_array_equal(got, whole_table_labs(out, subj, admit - 24 * H,
                                                        admit + 24 * H))
    per_subject = np.bincount(subj - 10_000_000).max()
    assert len(calls) > 10
    assert all(nq <= n_subj * per_subject * len(LAB_ITEMIDS) for n_subj, nq in calls)
    assert max(nq for _, nq in calls) < len(subj) * len(LAB_ITEMIDS)


def test_cohort_labs_matrix_has_scanned_rows_only(synth_small, tmp_path, monkeypatch):
    """The labs matrix holds one bucket's admissions whose labs were read, never every
    admission (nor every labelled one: one matrix per subject bucket)."""
    shapes = []
    real = steps_mod.match_labs
    monkeypatch.setattr(steps_mod, "match_labs",
                        lambda *a: (lambda m: (shapes.append(m.shape), m)[1])(real(*a)))
    r = synth_small
    rep = build_cohort(r / "mimic-iv", r / "mimic-iv-ecg", r / "mimic-cxr-jpg", tmp_path, CFG,
                       bucket_admissions=50)
    assert len(shapes) == -(-rep["admissions"] // 50) > 2
    assert sum(n for n, _ in shapes) == rep["labs"]["admissions_read"]
    assert {k for _, k in shapes} == {50}
    assert max(n for n, _ in shapes) < rep["labs"]["admissions_read"]
    assert rep["labs"]["admissions_read"] < rep["admissions"]
