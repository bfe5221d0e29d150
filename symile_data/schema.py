"""The one declaration of every table and shard schema the pipelines write.

``schemas/*.json`` is generated from this module (``symile-data schemas --write``) and a test
keeps the two equal. Each schema carries ``symile_data.schema`` (name) and
``symile_data.schema_version`` in its metadata. Bump SCHEMA_VERSION on any change.

Feature columns are ``fixed_size_list<float16|float32>[D]`` so readers turn a column into an
(N, D) array without per-row Python. Schemas with a model-dependent D are built by functions;
the generated JSON uses the reference dimensions (SPEC section 2).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pyarrow as pa

from symile_data.io.atomic import atomic_write_text

SCHEMA_VERSION = "1.0.0"

_REGISTRY: dict[str, Callable[[], pa.Schema]] = {}
_DOCS: dict[str, str] = {}


def _with_meta(name: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(fields, metadata={
        "symile_data.schema": name, "symile_data.schema_version": SCHEMA_VERSION})


def register(name: str, doc: str):
    """Decorator: register a zero-argument schema builder under ``name``."""
    def deco(fn: Callable[[], pa.Schema]):
        _REGISTRY[name] = fn
        _DOCS[name] = doc
        return fn
    return deco


def get(name: str) -> pa.Schema:
    if name not in _REGISTRY:
        raise KeyError(f"unknown schema '{name}'; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]()


def names() -> list[str]:
    return sorted(_REGISTRY)


# builder keywords that add columns under the same schema name (optional media columns)
_VARIANTS: dict[str, tuple[dict, ...]] = {"m3_samples": ({"embed_media": True},)}


def column_sets(name: str) -> list[list[str]]:
    """The column lists a table stamped ``name`` may have: the registered schema's, then
    those of its variants (``m3_samples`` with ``embed_media``: + image, audio)."""
    return [get(name).names] + [_REGISTRY[name](**kw).names for kw in _VARIANTS.get(name, ())]


def schema_name(schema: pa.Schema) -> str | None:
    meta = schema.metadata or {}
    v = meta.get(b"symile_data.schema")
    return v.decode() if v else None


def vec(dim: int, dtype: pa.DataType = pa.float16()) -> pa.DataType:
    """A fixed-length vector column type (e.g. a feature of width ``dim``).

    The child field is named "element" (Parquet's LIST convention) so that a schema read back
    from a shard equals the declared one.
    """
    return pa.list_(pa.field("element", dtype), dim)


# --------------------------------------------------------------------------------------------
# Foundation: synthetic XOR (SPEC section 4). a, b, c are d_v-bit vectors stored as int8.
# --------------------------------------------------------------------------------------------
XOR_DV = 5


def xor_schema(d_v: int = XOR_DV) -> pa.Schema:
    return _with_meta("xor_samples", [
        pa.field("key", pa.string(), nullable=False),       # stable sample key "xor-{split}-{i}"
        pa.field("split", pa.string(), nullable=False),
        pa.field("a", vec(d_v, pa.int8()), nullable=False),  # (d_v,) in {0,1}
        pa.field("b", vec(d_v, pa.int8()), nullable=False),
        pa.field("c", vec(d_v, pa.int8()), nullable=False),
        pa.field("i", pa.int8(), nullable=False),            # 1 when c = a XOR b
    ])


register("xor_samples", "Synthetic XOR tuples (a, b, c) of SPEC section 4")(xor_schema)

# --------------------------------------------------------------------------------------------
# Symile-M3 (issue 4) -- tables declared below this line.
# --------------------------------------------------------------------------------------------
def _hf_media(kind: str) -> pa.DataType:
    # Hugging Face Image / Audio feature storage: struct<bytes, path>
    return pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])


def m3_samples_schema(embed_media: bool = False) -> pa.Schema:
    fields = [
        pa.field("key", pa.string(), nullable=False),          # "{split}-{i:09d}", stable
        pa.field("split", pa.string(), nullable=False),
        pa.field("cls_id", pa.int16(), nullable=False),        # ImageNet-1k index 0..999
        pa.field("synset", pa.string(), nullable=False),
        pa.field("lang_id", pa.int8(), nullable=False),        # index in the SPEC list for w
        pa.field("lang", pa.string(), nullable=False),
        pa.field("target_word", pa.string(), nullable=False),  # class name in lang
        pa.field("text", pa.string(), nullable=False),         # w words joined by "_"
        pa.field("image_key", pa.string(), nullable=False),    # -> m3_images.image_key
        pa.field("audio_key", pa.string(), nullable=False),    # -> m3_clips.audio_key
        pa.field("image_missing", pa.bool_(), nullable=False),  # test split always False
        pa.field("text_missing", pa.bool_(), nullable=False),
        pa.field("audio_missing", pa.bool_(), nullable=False),
    ]
    if embed_media:  # raw bytes instead of references (HF Image / Audio features)
        fields += [pa.field("image", _hf_media("image")), pa.field("audio", _hf_media("audio"))]
    return _with_meta("m3_samples", fields)


register("m3_samples", "Symile-M3 samples (SPEC section 2), one row per sample")(
    m3_samples_schema)


@register("m3_images", "Symile-M3 unique images (one row per source image, keyed by content)")
def m3_images_schema() -> pa.Schema:
    return _with_meta("m3_images", [
        pa.field("image_key", pa.string(), nullable=False),   # sha256(synset, bytes)[:32]
        pa.field("synset", pa.string(), nullable=False),
        pa.field("cls_id", pa.int16(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),  # original file / hub reference
        pa.field("path", pa.string()),                        # resized JPEG, relative to table dir
        pa.field("width", pa.int32()),                        # of the resized JPEG, pixels
        pa.field("height", pa.int32()),
        pa.field("status", pa.string(), nullable=False),      # "ok" | "failed"
        pa.field("error", pa.string()),
    ])


@register("m3_clips", "Symile-M3 unique audio clips (one row per (text, lang, engine, voice))")
def m3_clips_schema() -> pa.Schema:
    return _with_meta("m3_clips", [
        pa.field("audio_key", pa.string(), nullable=False),   # sha256(text, lang, engine, voice)
        pa.field("lang", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),        # spoken sentence / CV transcript
        pa.field("engine", pa.string(), nullable=False),      # espeak-ng | gtts | common_voice
        pa.field("voice", pa.string(), nullable=False),
        pa.field("source_path", pa.string()),                 # Common Voice clip, else null
        pa.field("path", pa.string()),                        # cached audio, relative to table dir
        pa.field("sample_rate", pa.int32()),                  # Hz
        pa.field("duration_s", pa.float32()),
        pa.field("status", pa.string(), nullable=False),      # "ok" | "failed" | "dropped"
        pa.field("error", pa.string()),
    ])


# --------------------------------------------------------------------------------------------
# Symile-MIMIC (issue 5) -- tables declared below this line.
# --------------------------------------------------------------------------------------------
MIMIC_LAB_ITEMIDS = (
    50802, 50804, 50813, 50818, 50820, 50821, 50861, 50862, 50863, 50868, 50878, 50882, 50885,
    50893, 50902, 50910, 50912, 50931, 50934, 50947, 50960, 50970, 50971, 50983, 51006, 51133,
    51146, 51200, 51221, 51222, 51237, 51244, 51248, 51249, 51250, 51254, 51256, 51265, 51274,
    51275, 51277, 51279, 51301, 51678, 52069, 52073, 52074, 52075, 52135, 52172)  # SPEC order


@register("mimic_cohort", "Symile-MIMIC cohort: one admission with ECG, labs and CXR per row")
def mimic_cohort_schema() -> pa.Schema:
    return _with_meta("mimic_cohort", [
        pa.field("subject_id", pa.int64(), nullable=False),
        pa.field("hadm_id", pa.int64(), nullable=False),
        pa.field("admittime", pa.timestamp("s"), nullable=False),
        pa.field("ecg_study_id", pa.int64(), nullable=False),
        pa.field("ecg_time", pa.timestamp("s"), nullable=False),
        pa.field("ecg_path", pa.string(), nullable=False),     # relative to the ECG root
        pa.field("cxr_dicom_id", pa.string(), nullable=False),
        pa.field("cxr_study_id", pa.int64(), nullable=False),
        pa.field("cxr_time", pa.timestamp("ms"), nullable=False),  # StudyDate + StudyTime
        pa.field("cxr_path", pa.string(), nullable=False),     # relative to the CXR root
        *[pa.field(f"lab_{i}", pa.float64()) for i in MIMIC_LAB_ITEMIDS],  # raw valuenum/NaN
        pa.field("split", pa.string(), nullable=False),        # train / val / test
    ])


def mimic_samples_schema(ecg_len: int = 5000 * 12, cxr_len: int = 320 * 320,
                         n_labs: int = 50) -> pa.Schema:
    return _with_meta("mimic_samples", [
        pa.field("key", pa.string(), nullable=False),          # str(hadm_id)
        pa.field("subject_id", pa.int64(), nullable=False),
        pa.field("hadm_id", pa.int64(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("ecg", vec(ecg_len, pa.float32()), nullable=False),   # (5000, 12) row-major
        pa.field("cxr", vec(cxr_len, pa.uint8()), nullable=False),     # (320, 320)
        pa.field("labs_percentiles", vec(n_labs, pa.float32()), nullable=False),
        pa.field("labs_observed", vec(n_labs, pa.int8()), nullable=False),  # 1 = observed
    ])


register("mimic_samples", "Symile-MIMIC training rows: ECG [-1,1], CXR 320x320 uint8, lab "
         "percentiles (train ECDF, mean-imputed) and indicators (1 = observed)")(
    mimic_samples_schema)


@register("mimic_retrieval", "Symile-MIMIC retrieval sets: each val/test query with 10 CXR "
          "candidates (its own + 9 of its split) and the true index")
def mimic_retrieval_schema(k: int = 10) -> pa.Schema:
    return _with_meta("mimic_retrieval", [
        pa.field("split", pa.string(), nullable=False),
        pa.field("query_hadm_id", pa.int64(), nullable=False),
        pa.field("candidate_hadm_ids", vec(k, pa.int64()), nullable=False),
        pa.field("label", pa.int8(), nullable=False),          # index of the true CXR
    ])


# --------------------------------------------------------------------------------------------
# Encoder features (issue 6) -- tables declared below this line.
# --------------------------------------------------------------------------------------------
M3_D_IMG = 1024   # CLIP ViT-L/14 pooler_output width (SPEC section 2)
M3_D_AUD = 1280   # Whisper-large-v3 encoder width
M3_TEXT_LEN = 64  # reference-dims default for the generated JSON; real L comes from the data


def feature_table_schema(dim: int = M3_D_IMG, dtype: str = "float16") -> pa.Schema:
    """One row per unique item (image or clip) for one encoder id (see features/tables.py)."""
    vt = pa.float16() if dtype == "float16" else pa.float32()
    return _with_meta("feature_table", [
        pa.field("key", pa.string(), nullable=False),     # image_key / audio_key (content hash)
        pa.field("status", pa.string(), nullable=False),  # "ok" | "failed"
        pa.field("error", pa.string(), nullable=False),   # "" when ok
        pa.field("feat", vec(dim, vt)),                   # (D,), null when failed
    ])


register("feature_table", "Encoder features, one row per unique item (issue 6)")(
    feature_table_schema)


@register("text_tokens", "Tokenized unique texts (issue 6), variable length before padding")
def text_tokens_schema() -> pa.Schema:
    return _with_meta("text_tokens", [
        pa.field("text", pa.string(), nullable=False),         # the unique text (join key)
        pa.field("text_key", pa.string(), nullable=False),     # sha256(text)[:16]
        pa.field("input_ids", pa.list_(pa.int32()), nullable=False),  # with <s> ... </s>
        pa.field("n_tokens", pa.int32(), nullable=False),      # len(input_ids) after truncation
        pa.field("truncated", pa.bool_(), nullable=False),     # True when cut at max_length
    ])


def m3_train_schema(d_img: int = M3_D_IMG, d_aud: int = M3_D_AUD, text_len: int = M3_TEXT_LEN,
                    dtype: str = "float16") -> pa.Schema:
    """M3 training shards: the m3_samples columns + features joined by key (issue 6).

    Rows with image/audio/text_missing keep the real feature; the training side replaces it.
    """
    vt = pa.float16() if dtype == "float16" else pa.float32()
    return _with_meta("m3_train", list(m3_samples_schema()) + [
        pa.field("image_feat", vec(d_img, vt), nullable=False),           # (D_img,)
        pa.field("audio_feat", vec(d_aud, vt), nullable=False),           # (D_aud,)
        pa.field("text_input_ids", vec(text_len, pa.int32()), nullable=False),   # (L,) padded
        pa.field("text_attention_mask", vec(text_len, pa.int8()), nullable=False),  # 1 = token
    ])


register("m3_train", "Symile-M3 training shards: samples joined with encoder features")(
    m3_train_schema)


# --------------------------------------------------------------------------------------------
# Training and evaluation outputs (issue 3) -- tables declared below this line.
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# JSON generation (schemas/*.json) and the equality check.
# --------------------------------------------------------------------------------------------
def schema_to_json(schema: pa.Schema) -> dict:
    meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    return {
        "name": meta.get("symile_data.schema"),
        "schema_version": meta.get("symile_data.schema_version"),
        "fields": [{"name": f.name, "type": str(f.type), "nullable": f.nullable}
                   for f in schema],
    }


def render_all() -> dict[str, str]:
    """file name -> JSON text for every registered schema."""
    out = {}
    for name in names():
        doc = schema_to_json(get(name))
        doc["description"] = _DOCS[name]
        out[f"{name}.json"] = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    return out


def write_schemas(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rendered = render_all()
    for stale in directory.glob("*.json"):
        if stale.name not in rendered:
            stale.unlink()
    paths = []
    for fname, text in rendered.items():
        p = directory / fname
        atomic_write_text(p, text)
        paths.append(p)
    return paths


def diff_schemas(directory: str | Path) -> list[str]:
    """Differences between this module and ``directory`` (empty when equal)."""
    directory = Path(directory)
    rendered = render_all()
    problems = []
    on_disk = {p.name: p.read_text() for p in directory.glob("*.json")}
    for fname, text in rendered.items():
        if fname not in on_disk:
            problems.append(f"{directory / fname}: missing (run `symile-data schemas --write`)")
        elif on_disk[fname] != text:
            problems.append(f"{directory / fname}: differs from symile_data/schema.py")
    for fname in sorted(set(on_disk) - set(rendered)):
        problems.append(f"{directory / fname}: no such schema in symile_data/schema.py")
    return problems
