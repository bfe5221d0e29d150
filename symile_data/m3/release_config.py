"""params section ``m3_release``: import the released Symile-M3 (see docs/release.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class M3ReleaseConfig:
    """Where the released rows come from and how the imported dataset is sharded.

    source ``hub``: Parquet shards of ``hub_repo`` (huggingface_hub cache ``cache_dir``);
    ``parquet``: a local download folder ``{local_dir}/{config}/{split}-NNNNN-of-NNNNN.parquet``;
    ``csv``: ``{csv_dir}/{config}/{split}.csv`` with images under ``imagenet_root``
    (``ILSVRC/Data/CLS-LOC/train/...``) and clips under ``common_voice_root`` (``cv/{lang}/clips``).
    """
    source: Literal["hub", "parquet", "csv"] = "parquet"
    config: str = "symile-m3-2-xs"
    hub_repo: str = "arsaporta/symile-m3"
    hub_revision: str | None = None
    cache_dir: str = "data/m3/cache/hub"
    local_dir: str = ""
    csv_dir: str = ""
    imagenet_root: str = ""
    common_voice_root: str = ""
    translations: str = ""          # translations.json; "" = the one at the release root
    batch_rows: int = 2048          # rows per streamed batch (memory bound)
    retries: int = 5                # Hub download attempts (exponential backoff)
    max_rows_per_shard: int = 1_000_000
    target_shard_bytes: int = 500_000_000
    row_group_rows: int = 8192

    def validate(self) -> None:
        if self.batch_rows < 1 or self.retries < 1:
            raise ValueError("batch_rows and retries must be >= 1")
        if self.source == "parquet" and not self.local_dir:
            raise ValueError("source parquet needs local_dir (the download folder)")
        if self.source == "csv" and not (self.csv_dir and self.imagenet_root
                                         and self.common_voice_root):
            raise ValueError("source csv needs csv_dir, imagenet_root and common_voice_root")
