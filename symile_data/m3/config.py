"""params.yaml sections of the M3 stages (strict frozen dataclasses; see docs/m3.md)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from symile_data.m3.translations import ALL_LANGS, LANGS_BY_W, check_languages

DEMO_TRANSLATIONS = "symile_data/resources/m3/demo_translations.json"
DEFAULT_SENTENCES = "symile_data/resources/m3/sentences.json"
# SPEC section 2 sizes: (train, val, test)
SIZES = {"xs": (500_000, 25_000, 25_000), "s": (1_000_000, 50_000, 50_000),
         "m": (5_000_000, 250_000, 250_000), "l": (10_000_000, 500_000, 500_000)}


def _check_scheduler(s: str) -> None:
    if not s:
        raise ValueError("scheduler must be local, threads, synchronous or a dask address")


@dataclass(frozen=True)
class M3DemoConfig:
    """Generated ILSVRC-layout images for the classes of a translation table."""
    translations: str = DEMO_TRANSLATIONS  # class list = the synsets of this table
    images_per_class: int = 6
    image_size: int = 128                  # px, square
    seed: int = 0

    def validate(self) -> None:
        if self.images_per_class < 1 or self.image_size < 32:
            raise ValueError("images_per_class must be >= 1 and image_size >= 32")


@dataclass(frozen=True)
class M3TranslationsConfig:
    backend: Literal["file", "hub", "google"] = "file"
    path: str = DEMO_TRANSLATIONS          # backend file: a reference-layout translations.json
    hub_repo: str = "arsaporta/symile-m3"
    hub_revision: str | None = None
    cache_dir: str = "data/m3/cache/translations"
    overrides: str = ""                    # {english name: {lang: string}}; "" = none
    languages: tuple[str, ...] = ALL_LANGS
    classes: tuple[str, ...] = ()          # synsets to keep; () = every class of the source
    google_api_key_env: str = "GOOGLE_TRANSLATE_API_KEY"
    google_min_interval_s: float = 0.2
    retries: int = 5

    def validate(self) -> None:
        check_languages(self.languages, "languages")
        if "en" not in self.languages:
            raise ValueError("languages must include 'en'")


@dataclass(frozen=True)
class M3ImagesConfig:
    source: Literal["folder", "hub"] = "folder"
    root: str = "data/m3/demo/ILSVRC"      # ILSVRC root (Data/CLS-LOC/train) or a train/ folder
    hub_dataset: str = "ILSVRC/imagenet-1k"
    hub_split: str = "train"
    max_images_per_class: int = 0          # 0 = all
    resize: int = 256                      # shorter side in px after resizing; 0 = keep size
    jpeg_quality: int = 90
    scheduler: str = "local"               # local | threads | synchronous | tcp://host:port
    n_workers: int = 2
    batch_size: int = 64                   # images per dask task

    def validate(self) -> None:
        _check_scheduler(self.scheduler)
        if self.max_images_per_class < 0 or self.resize < 0 or not 1 <= self.jpeg_quality <= 100:
            raise ValueError("max_images_per_class, resize >= 0 and jpeg_quality in 1..100")


@dataclass(frozen=True)
class M3ClipsConfig:
    engine: Literal["espeak-ng", "gtts", "common_voice"] = "espeak-ng"
    languages: tuple[str, ...] = ALL_LANGS
    sentences: str = DEFAULT_SENTENCES     # {lang: [sentence, ...]}, none naming a class
    voices: dict[str, Any] = field(default_factory=dict)  # lang -> espeak voice override
    common_voice_root: str = ""            # {root}/{lang}/validated.tsv + clips/
    max_clips_per_lang: int = 0            # 0 = all
    gtts_tld: str = "com"
    throttle_s: float = 1.0                # gTTS: min seconds between requests
    retries: int = 5
    seed: int = 0                          # Common Voice subsampling
    scheduler: str = "local"
    n_workers: int = 2
    batch_size: int = 16

    def validate(self) -> None:
        check_languages(self.languages, "languages")
        check_languages(list(self.voices), "voices")
        for lang, voice in self.voices.items():
            if not isinstance(voice, str) or not voice.strip():
                raise ValueError(f"voices.{lang}: expected a voice name (string), got {voice!r}")
        _check_scheduler(self.scheduler)
        if self.engine == "common_voice" and not self.common_voice_root:
            raise ValueError("engine common_voice needs common_voice_root")


@dataclass(frozen=True)
class M3SamplesConfig:
    ws: tuple[int, ...] = (2,)
    sizes: tuple[str, ...] = ("demo",)
    custom_sizes: dict[str, Any] = field(default_factory=lambda: {"demo": [4000, 400, 400]})
    seed: int = 0
    missing_p: float = 0.0                 # Bernoulli(p) per modality, train/val only
    embed_media: bool = False              # HF Image/Audio bytes instead of references
    wds_export: bool = False               # also write raw media as WebDataset tars
    # rows per RNG block (output independent of shards); with max_rows_per_shard, the memory
    # unit of the stage: peak RSS is flat in the number of rows (docs/m3.md "Scale")
    block_rows: int = 100_000
    max_rows_per_shard: int = 250_000
    target_shard_bytes: int = 500_000_000
    row_group_rows: int = 8192
    wds_samples_per_shard: int = 1000

    def validate(self) -> None:
        bad = [w for w in self.ws if w not in LANGS_BY_W]
        if bad:
            raise ValueError(f"ws: {bad} not in {sorted(LANGS_BY_W)}")
        for s in self.sizes:
            self.split_rows(s)
        if not 0.0 <= self.missing_p <= 1.0:
            raise ValueError(f"missing_p must be in [0, 1], got {self.missing_p}")

    def split_rows(self, size: str) -> tuple[int, int, int]:
        if size in SIZES:
            return SIZES[size]
        rows = self.custom_sizes.get(size)
        if (not isinstance(rows, (list, tuple)) or len(rows) != 3
                or not all(isinstance(r, int) and r >= 0 for r in rows)):
            raise ValueError(f"size '{size}' is neither one of {sorted(SIZES)} nor in "
                             f"custom_sizes as [train, val, test] row counts")
        return tuple(rows)

    def dataset_name(self, w: int, size: str) -> str:
        suffix = f"-miss{self.missing_p:g}" if self.missing_p > 0 else ""
        return f"symile-m3-{w}-{size}{suffix}"
