"""The cohort joined per subject bucket (partition.py, cohort_steps.py): the same bytes as one
bucket, each bucket a share of the lists, record-list errors still named by file and row."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from symile_data.mimic import partition
from symile_data.mimic.cohort import build_cohort
from symile_data.mimic.config import CohortConfig
from symile_data.mimic.readers import MimicInputError, admission_blocks

CFG = CohortConfig(train_size=0.5, val_size=0.25, seed=0, ecg_check_threads=2)
OUTS = ("cohort.parquet", "ecg_checks.parquet", "cxr_checks.parquet", "report.json")


def _run(r, out, **kw):
    return build_cohort(r / "mimic-iv", r / "mimic-iv-ecg", r / "mimic-cxr-jpg", out, CFG, **kw)


def test_any_bucket_count_gives_the_same_bytes(synth_small, tmp_path):
    one = _run(synth_small, tmp_path / "one", bucket_admissions=10_000)
    assert one["cohort"]["admissions"] > 10
    for per in (23, 1):                                   # 7 buckets; one admission each
        _run(synth_small, tmp_path / f"b{per}", bucket_admissions=per)
        for name in OUTS:
            assert (tmp_path / "one" / name).read_bytes() == \
                (tmp_path / f"b{per}" / name).read_bytes(), (per, name)
    assert not list((tmp_path / "b1").glob(".cohort-spill.*"))   # scratch removed


def test_small_chunks_same_rows(synth_small, tmp_path):
    _run(synth_small, tmp_path / "a")
    _run(synth_small, tmp_path / "b", bucket_admissions=17, chunk_rows=7)
    for name in OUTS[:3]:
        f = pq.ParquetFile(tmp_path / "b" / name)
        assert f.metadata.num_row_groups > 1 and f.metadata.row_group(0).num_rows == 7
        pd.testing.assert_frame_equal(pq.read_table(tmp_path / "a" / name).to_pandas(),
                                      f.read().to_pandas())


def test_each_bucket_reads_a_share_of_the_lists(synth_small, tmp_path, monkeypatch):
    """A stage that loaded a whole list would show it here: every read is one bucket's."""
    reads = []
    real = partition.Buckets.read
    monkeypatch.setattr(partition.Buckets, "read", lambda self, name, b: (
        lambda t: (reads.append((name, t.num_rows)), t)[1])(real(self, name, b)))
    rep = _run(synth_small, tmp_path, bucket_admissions=30)
    per = {n: max(k for m, k in reads if m == n) for n in ("adm", "ecg", "cxr")}
    assert per["adm"] < rep["admissions"] / 2
    assert per["ecg"] < rep["ecg"]["records"] / 2
    assert per["cxr"] < rep["cxr"]["frontal_rows"] / 2


def test_stale_scratch_is_removed(synth_small, tmp_path):
    """A killed run's spill folder (its pid gone) is removed by the next run."""
    import subprocess
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f".cohort-spill.{dead.pid}.tmp" / "x").mkdir(parents=True)
    _run(synth_small, tmp_path)
    assert not list(tmp_path.glob(".cohort-spill.*"))


def _admissions(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        pd.DataFrame(rows, columns=["subject_id", "hadm_id", "admittime"]).to_csv(f, index=False)


def test_duplicate_hadm_of_two_subjects_is_named(tmp_path):
    """Subjects 1 and 2 fall in different buckets; their shared hadm_id is still found."""
    rows = [(s, 100 + s, "2150-01-01 00:00:00") for s in range(1, 40)] + \
        [(2, 101, "2150-01-02 00:00:00"), (5, 104, "2150-01-02 00:00:00")]
    _admissions(tmp_path / "iv/hosp/admissions.csv.gz", rows)
    with pytest.raises(MimicInputError, match=r"admissions.csv.gz: duplicate hadm_id 101"):
        partition.partition_lists(tmp_path / "iv", tmp_path / "ecg", tmp_path / "cxr",
                                  tmp_path, per_bucket=4)


def test_bad_timestamp_in_a_later_block_names_its_row(tmp_path):
    rows = [(s, s, "2150-01-01 00:00:00") for s in range(3000)]
    rows[2500] = (2500, 2500, "yesterday")
    _admissions(tmp_path / "iv/hosp/admissions.csv.gz", rows)
    with pytest.raises(MimicInputError, match="admittime row 2502 .*yesterday"):
        for _ in admission_blocks(tmp_path / "iv", block_bytes=4096):
            pass


def test_block_rows_are_numbered_across_blocks(tmp_path):
    rows = [(s, s, "2150-01-01 00:00:00") for s in range(3000)]
    _admissions(tmp_path / "iv/hosp/admissions.csv.gz", rows)
    blocks = list(admission_blocks(tmp_path / "iv", block_bytes=4096))
    assert len(blocks) > 5
    starts = [r for r, _ in blocks]
    sizes = [t.num_rows for _, t in blocks]
    assert starts == list(np.cumsum([0] + sizes[:-1])) and sum(sizes) == 3000
