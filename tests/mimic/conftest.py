"""Hand-made MIMIC-layout trees for the cohort edge cases, and a small generated tree."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from symile_data.mimic.config import ECG_FS, ECG_LEAD_NAMES, LAB_ITEMIDS, SynthConfig
from symile_data.mimic.wfdb_io import write_wfdb16

os.environ.setdefault("SYMILE_DATA_PROGRESS", "off")
H = 3600
T0 = pd.Timestamp("2150-01-10 12:00:00")     # admittime of the hand-made admissions


def ts(hours: float) -> str:
    return (T0 + pd.Timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")


def study_dt(hours: float) -> tuple[int, float]:
    """(StudyDate, StudyTime) for admittime + hours; StudyTime keeps a fraction."""
    t = T0 + pd.Timedelta(hours=hours)
    frac = t.microsecond / 1e6
    return int(t.strftime("%Y%m%d")), float(t.strftime("%H%M%S")) + round(frac, 3)


def ecg_signal(kind: str = "ok", n: int = 5000) -> np.ndarray:
    rng = np.random.default_rng(0)
    sig = rng.normal(0, 0.3, (n, 12))
    if kind == "nan":
        sig[100:200, 3] = np.nan
    elif kind == "zero":
        sig[:] = 0.0
    elif kind == "constant":
        sig[:] = 0.5
    return sig


class Tree:
    """Collects rows, then writes the three trees under ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self.adm, self.ecg, self.labs, self.meta, self.chex = [], [], [], [], []
        self.files: list[tuple[str, str]] = []     # (kind, relative path)

    def admission(self, subject: int, hadm: int, hours: float = 0.0):
        self.adm.append({"subject_id": subject, "hadm_id": hadm, "admittime": ts(hours)})

    def ecg_record(self, subject: int, study: int, hours: float, kind: str = "ok"):
        path = f"files/p{str(subject)[:4]}/p{subject}/s{study}/{study}"
        self.ecg.append({"subject_id": subject, "study_id": study, "file_name": str(study),
                         "ecg_time": ts(hours), "path": path})
        if kind == "bad_header":
            base = self.root / "ecg" / path
            base.parent.mkdir(parents=True, exist_ok=True)
            base.with_name(base.name + ".hea").write_text("garbage\n")
        elif kind == "short":                      # a consistent record of 2500 samples
            write_wfdb16(self.root / "ecg" / path, ecg_signal(n=2500), ECG_FS, ECG_LEAD_NAMES)
        else:
            write_wfdb16(self.root / "ecg" / path, ecg_signal(kind), ECG_FS, ECG_LEAD_NAMES)

    def lab(self, subject: int, itemid: int, hours: float, value: float | None):
        self.labs.append({"subject_id": subject, "itemid": itemid, "charttime": ts(hours),
                          "valuenum": value})

    def cxr(self, subject: int, study: int, dicom: str, hours: float, view: str = "PA",
            file: str = "jpg", chexpert: bool = True):
        date, time = study_dt(hours)
        self.meta.append({"dicom_id": dicom, "subject_id": subject, "study_id": study,
                          "ViewPosition": view, "StudyDate": date, "StudyTime": time})
        if chexpert and not any(c["study_id"] == study for c in self.chex):
            self.chex.append({"subject_id": subject, "study_id": study, "Edema": 1.0})
        rel = f"files/p{str(subject)[:2]}/p{subject}/s{study}/{dicom}.jpg"
        p = self.root / "cxr" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        img = (np.random.default_rng(study).random((400, 340)) * 255).astype(np.uint8)
        if file == "jpg":
            Image.fromarray(img).save(p, format="JPEG")
        elif file == "corrupt":
            p.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        elif file == "empty":
            p.write_bytes(b"")
        elif file == "truncated":                  # a valid JPG cut off in its scan data
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG")
            p.write_bytes(buf.getvalue()[:len(buf.getvalue()) * 2 // 3])

    def write(self) -> dict[str, Path]:
        hosp = self.root / "mimic-iv" / "hosp"
        hosp.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(self.adm).to_csv(hosp / "admissions.csv.gz", index=False)
        labs = pd.DataFrame(self.labs, columns=["subject_id", "itemid", "charttime", "valuenum"])
        labs.insert(0, "labevent_id", np.arange(1, len(labs) + 1))
        labs.insert(2, "hadm_id", pd.array([None] * len(labs), dtype="Int64"))
        labs.to_csv(hosp / "labevents.csv.gz", index=False)
        (self.root / "ecg").mkdir(exist_ok=True)
        pd.DataFrame(self.ecg, columns=["subject_id", "study_id", "file_name", "ecg_time",
                                        "path"]).to_csv(self.root / "ecg" / "record_list.csv",
                                                        index=False)
        cx = self.root / "cxr"
        cx.mkdir(exist_ok=True)
        pd.DataFrame(self.meta, columns=["dicom_id", "subject_id", "study_id", "ViewPosition",
                                         "StudyDate", "StudyTime"]).to_csv(
            cx / "mimic-cxr-2.0.0-metadata.csv.gz", index=False)
        pd.DataFrame(self.chex, columns=["subject_id", "study_id", "Edema"]).to_csv(
            cx / "mimic-cxr-2.0.0-chexpert.csv.gz", index=False)
        return {"mimic_iv": self.root / "mimic-iv", "ecg": self.root / "ecg", "cxr": cx}


@pytest.fixture
def tree(tmp_path) -> Tree:
    return Tree(tmp_path / "raw")


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """A generated tree of 150 admissions (small images), shared by the tests."""
    from symile_data.mimic.synth import synth_tree
    out = tmp_path_factory.mktemp("synth") / "raw"
    synth_tree(out, SynthConfig(admissions=150, seed=3, cxr_height=96, cxr_width=80))
    return out


LAB0, LAB1 = LAB_ITEMIDS[0], LAB_ITEMIDS[1]
