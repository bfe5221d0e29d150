"""WFDB, DICOM, JPG readers and the streaming labevents conversion."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import wfdb

from symile_data.mimic.config import ECG_LEAD_NAMES
from symile_data.mimic.images import ImageError, load_cxr, resize_crop
from symile_data.mimic.labevents import convert_labevents
from symile_data.mimic.preprocess import ecg_array
from symile_data.mimic.wfdb_io import WfdbError, read_wfdb, write_wfdb16

from .conftest import ecg_signal


def test_wfdb_roundtrip_and_wfdb_package(tmp_path):
    sig = ecg_signal("nan")
    write_wfdb16(tmp_path / "r1", sig, 500, ECG_LEAD_NAMES)
    rec = wfdb.rdrecord(str(tmp_path / "r1"))                 # standard WFDB
    ours = read_wfdb(tmp_path / "r1")
    np.testing.assert_allclose(ours, rec.p_signal, atol=1e-6, equal_nan=True)
    assert np.isnan(ours[100:200, 3]).all() and not np.isnan(ours[:100]).any()
    # a record written by wfdb itself, with a non-zero baseline
    d = (np.random.default_rng(1).normal(0, 100, (5000, 12))).astype(np.int16)
    wfdb.wrsamp("r2", fs=500, units=["mV"] * 12, sig_name=list(ECG_LEAD_NAMES), d_signal=d,
                fmt=["16"] * 12, adc_gain=[200.0] * 12, baseline=[7] * 12,
                write_dir=str(tmp_path))
    np.testing.assert_allclose(read_wfdb(tmp_path / "r2"),
                               wfdb.rdsamp(str(tmp_path / "r2"))[0], atol=1e-5)
    x = ecg_array(tmp_path / "r2")
    assert x.shape == (5000, 12) and x.min() == -1.0 and x.max() == 1.0


def test_wfdb_errors_name_the_record(tmp_path):
    (tmp_path / "bad.hea").write_text("bad\n")
    with pytest.raises(WfdbError, match="bad.hea"):
        read_wfdb(tmp_path / "bad")
    with pytest.raises(WfdbError, match="missing.hea"):
        read_wfdb(tmp_path / "missing")
    write_wfdb16(tmp_path / "short", ecg_signal(n=100), 500, ECG_LEAD_NAMES)
    with pytest.raises(WfdbError, match=r"short.*\(100, 12\)"):
        ecg_array(tmp_path / "short")


def _dicom(path, arr, photometric="MONOCHROME2", bits=16, window=None):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
    ds.PixelRepresentation = 0
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = arr.astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)


def test_dicom_monochrome1_voi_and_bit_depths(tmp_path):
    ramp = np.tile(np.linspace(0, 4095, 64), (48, 1)).astype(np.uint16)   # 12-bit
    _dicom(tmp_path / "m2.dcm", ramp, bits=12)
    _dicom(tmp_path / "m1.dcm", ramp, "MONOCHROME1", bits=12)
    a, b = load_cxr(tmp_path / "m2.dcm"), load_cxr(tmp_path / "m1.dcm")
    assert a.dtype == np.uint8 and a[0, 0] == 0 and a[0, -1] == 255
    np.testing.assert_array_equal(b, 255 - a)                              # inverted
    ramp16 = np.tile(np.linspace(0, 65535, 64), (48, 1)).astype(np.uint16)
    _dicom(tmp_path / "w.dcm", ramp16, bits=16, window=(32768, 16384))
    w = load_cxr(tmp_path / "w.dcm")
    assert (w[:, :16] == 0).all() and (w[:, -16:] == 255).all()             # VOI window clips
    (tmp_path / "bad.dcm").write_bytes(b"DICM? no")
    with pytest.raises(ImageError, match="bad.dcm"):
        load_cxr(tmp_path / "bad.dcm")


def test_jpg_resize_crop(tmp_path):
    from PIL import Image
    img = (np.random.default_rng(0).random((500, 400)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "a.jpg")
    x = load_cxr(tmp_path / "a.jpg")
    assert resize_crop(x, None).shape == (320, 320)
    assert resize_crop(x, (0.99, 0.5)).shape == (320, 320)
    assert not np.array_equal(resize_crop(x, (0.0, 0.0)), resize_crop(x, (0.99, 0.0)))
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0junk")
    with pytest.raises(ImageError, match="c.jpg"):
        load_cxr(tmp_path / "c.jpg")


def test_labevents_streaming_matches_pandas(synth_small, tmp_path):
    src = synth_small / "mimic-iv/hosp/labevents.csv.gz"
    out = convert_labevents(src, tmp_path / "l.parquet", block_bytes=1 << 15)  # many blocks
    got = pd.read_parquet(out)
    ref = pd.read_csv(src)
    assert len(got) == len(ref) > 1000
    np.testing.assert_array_equal(got["labevent_id"], ref["labevent_id"])
    np.testing.assert_array_equal(got["valuenum"].to_numpy(), ref["valuenum"].to_numpy())
    assert (got["charttime"] == pd.to_datetime(ref["charttime"])).all()
    mtime = out.stat().st_mtime_ns
    convert_labevents(src, out)                                  # up to date: not rewritten
    assert out.stat().st_mtime_ns == mtime


def test_labevents_parquet_of_another_input_is_not_reused(synth_small, tmp_path):
    """Issue 21 (cohort scratch): the converted labevents.parquet is reused only while it is
    the file this source made; a foreign or damaged one is converted again."""
    src = synth_small / "mimic-iv/hosp/labevents.csv.gz"
    out = convert_labevents(src, tmp_path / "l.parquet")
    want = out.read_bytes()
    import gzip
    with gzip.open(src, "rt") as f:
        head = [next(f) for _ in range(11)]                       # header + 10 rows
    with gzip.open(tmp_path / "other.csv.gz", "wt") as f:
        f.writelines(head)
    convert_labevents(tmp_path / "other.csv.gz", tmp_path / "other.parquet")
    out.write_bytes((tmp_path / "other.parquet").read_bytes())   # another input's conversion
    convert_labevents(src, out)
    assert out.read_bytes() == want
    out.write_bytes(want[:-100])                                 # damaged
    convert_labevents(src, out)
    assert out.read_bytes() == want


def test_bad_cxr_studytime_names_file_row_column_and_value(tmp_path):
    """A StudyTime Arrow cannot read as a number ('12:30') and one out of range (25:00:00):
    both name the file, the row (line) and the value, with plain numbers (no np.int64(...))."""
    import gzip
    from symile_data.mimic.config import CXR_FILES
    from symile_data.mimic.csvstream import MimicInputError
    from symile_data.mimic.readers import cxr_blocks
    path = tmp_path / CXR_FILES["metadata"]
    for bad, want in (("12:30", r"row 4 \(line\): column StudyTime: '12:30' is not a double"),
                      ("250000", r"row 4 \(line\): bad StudyDate/StudyTime 21800101 / 250000\.0$")):
        rows = ["dicom_id,subject_id,study_id,ViewPosition,StudyDate,StudyTime"] + \
            [f"d{i},1,2,PA,21800101,{120000 + i}.5" for i in range(5)]
        rows[3] = f"d2,1,2,PA,21800101,{bad}"
        with gzip.open(path, "wt") as f:
            f.write("\n".join(rows) + "\n")
        with pytest.raises(MimicInputError, match=want) as e:
            list(cxr_blocks(tmp_path))
        assert str(e.value).startswith(f"{path}: ")
