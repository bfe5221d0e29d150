"""Constants of Symile-MIMIC (SPEC section 3) and the params.yaml sections of its stages.

Sections: ``mimic_synth`` (MIMIC-layout generator), ``mimic_cohort`` (time-window cohort and
patient-disjoint splits), ``mimic_shards`` (preprocessed arrays, retrieval sets, shards).
"""
from __future__ import annotations

from dataclasses import dataclass

from symile_data.schema import MIMIC_LAB_ITEMIDS

# The 50 lab itemids in the reference order (labs_percentiles[k] is LAB_ITEMIDS[k]).
LAB_ITEMIDS: tuple[int, ...] = MIMIC_LAB_ITEMIDS
N_LABS = len(LAB_ITEMIDS)
LAB_COLUMNS = tuple(f"lab_{i}" for i in LAB_ITEMIDS)

# Windows relative to admittime, in hours. ECG and labs: [-24, +24]; CXR: (+24, +72].
ECG_WINDOW_H = (-24.0, 24.0)
LAB_WINDOW_H = (-24.0, 24.0)
CXR_WINDOW_H = (24.0, 72.0)
CXR_VIEWS = ("AP", "PA")

ECG_SAMPLES, ECG_LEADS, ECG_FS = 5000, 12, 500      # 10 s at 500 Hz, 12 leads
ECG_LEAD_NAMES = ("I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6")
CXR_SIZE = 320                                       # 320 x 320 crops
N_CANDIDATES = 10                                    # retrieval: true CXR + 9 others

# File names of the real releases (relative to each root).
HOSP_FILES = {"patients": "hosp/patients.csv.gz", "admissions": "hosp/admissions.csv.gz",
              "labevents": "hosp/labevents.csv.gz", "d_labitems": "hosp/d_labitems.csv.gz"}
ECG_RECORD_LIST = "record_list.csv"
CXR_FILES = {"metadata": "mimic-cxr-2.0.0-metadata.csv.gz",
             "chexpert": "mimic-cxr-2.0.0-chexpert.csv.gz",
             "split": "mimic-cxr-2.0.0-split.csv.gz"}
CHEXPERT_LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema",
                   "Enlarged Cardiomediastinum", "Fracture", "Lung Lesion", "Lung Opacity",
                   "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
                   "Pneumothorax", "Support Devices")


def _check_prob(name: str, v: float) -> None:
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {v}")


@dataclass(frozen=True)
class SynthConfig:
    """Generator of a MIMIC-layout tree (``symile-data mimic synth``)."""
    admissions: int = 2000
    seed: int = 0
    ecg_samples: int = ECG_SAMPLES   # samples per WFDB record (5000 = 10 s at 500 Hz)
    cxr_height: int = 416            # generated JPG size (portrait, like real CXRs)
    cxr_width: int = 352
    p_ecg: float = 0.9               # admission has an ECG inside its window
    p_bad_ecg: float = 0.06          # ... and the earliest one is NaN or all zero
    p_labs: float = 0.95             # admission has any of the 50 labs inside its window
    p_cxr: float = 0.85              # admission has a CXR study in (+24 h, +72 h]
    p_missing_jpg: float = 0.03      # a metadata row whose JPG file is absent
    p_no_chexpert: float = 0.03      # a study without CheXpert labels
    p_readmit: float = 0.25          # subject gets a second admission (half of them close)
    signal_strength: float = 1.0     # scale of the planted cross-modal effects

    def validate(self) -> None:
        if self.admissions < 1:
            raise ValueError(f"admissions must be >= 1, got {self.admissions}")
        if self.ecg_samples < 10 or self.cxr_height < 32 or self.cxr_width < 32:
            raise ValueError("ecg_samples must be >= 10 and cxr_height/cxr_width >= 32")
        for k in ("p_ecg", "p_bad_ecg", "p_labs", "p_cxr", "p_missing_jpg", "p_no_chexpert",
                  "p_readmit"):
            _check_prob(k, getattr(self, k))


@dataclass(frozen=True)
class CohortConfig:
    """Cohort selection and patient-disjoint splits (``symile-data mimic cohort``).

    train_size / val_size: a number >= 1 is a count of admissions, below 1 a fraction; the
    test split gets the rest. Whole subjects are assigned, so counts are reached approximately.
    """
    train_size: float = 0.7
    val_size: float = 0.15
    seed: int = 0
    ecg_check_threads: int = 4       # threads reading candidate WFDB records (I/O bound)
    cxr_ext: str = ".jpg"            # image files: .jpg (MIMIC-CXR-JPG) or .dcm (MIMIC-CXR)

    def validate(self) -> None:
        for k in ("train_size", "val_size"):
            v = getattr(self, k)
            if v <= 0 or (v > 1 and v != int(v)):
                raise ValueError(f"{k} must be a fraction in (0, 1) or a whole count, got {v}")
        if self.train_size < 1 and self.val_size < 1 and self.train_size + self.val_size >= 1:
            raise ValueError("train_size + val_size must leave a test split (sum < 1)")
        if self.ecg_check_threads < 1:
            raise ValueError("ecg_check_threads must be >= 1")
        if self.cxr_ext not in (".jpg", ".dcm"):
            raise ValueError(f"cxr_ext must be '.jpg' or '.dcm', got {self.cxr_ext!r}")


@dataclass(frozen=True)
class ShardsConfig:
    """Preprocessing, retrieval sets and shards (``symile-data mimic shards``)."""
    seed: int = 0
    n_candidates: int = N_CANDIDATES
    formats: tuple[str, ...] = ("parquet",)   # any of parquet, wds
    max_rows_per_shard: int = 1000
    target_shard_bytes: int = 500_000_000
    row_group_rows: int = 64
    samples_per_shard: int = 1000               # WebDataset
    jpeg_quality: int = 95                      # WebDataset cxr.jpg

    def validate(self) -> None:
        bad = sorted(set(self.formats) - {"parquet", "wds"})
        if bad or not self.formats:
            raise ValueError(f"formats must be a non-empty subset of [parquet, wds], got "
                             f"{list(self.formats)}")
        if self.n_candidates < 2:
            raise ValueError(f"n_candidates must be >= 2, got {self.n_candidates}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
