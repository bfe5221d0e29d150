"""Import rates of the released layouts on generated fakes (JSON), for docs/release.md.

    python bench/release.py [ROWS] [--unique-images 2000] [--image-kb 110] [--mimic 300]

M3: a Parquet release of ROWS train rows (+5% val, +5% test), media drawn with replacement
from ``unique-images`` noise JPEGs of about ``image-kb`` KB (ImageNet's mean; each image of one
class) and 200 WAV clips, imported from the local folder; then rows of the same kind as split
CSVs over an ILSVRC / Common Voice tree (MP3 clips), read in place. MIMIC: a tensor release of ``mimic`` admissions
in the reference layout (random values of the right shapes and dtypes), imported into shards.
Reports rows/s, source MB/s, output bytes per row and peak RSS; extrapolation to the real sizes
is done in docs/release.md from these slopes.
"""
from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/release"))
from fakes_m3 import hf_schema, sample_rows, translations, wav  # noqa: E402

from symile_data.m3.release_config import M3ReleaseConfig  # noqa: E402
from symile_data.m3.release_import import import_release  # noqa: E402


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _child(fn, args, queue) -> None:
    t0 = time.perf_counter()
    rep = fn(*args)
    r = resource.getrusage(resource.RUSAGE_SELF)
    # VmHWM: this process image's own peak (ru_maxrss keeps the forking parent's peak)
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM:"))
    queue.put((rep, time.perf_counter() - t0, r.ru_utime + r.ru_stime, hwm / 1024))


def _in_child(fn, *args):
    """(result, wall s, CPU s, peak RSS MB) of fn(*args) in a fresh (spawned) process: the RSS
    is the import's own, and CPU s is what the shared machine's load does not inflate."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, args, q))
    p.start()
    rep, wall, cpu, rss = q.get()
    p.join()
    return rep, wall, cpu, round(rss)


def noise_jpeg(rng, kb: int) -> bytes:
    side = int(np.sqrt(kb * 1024 / 1.5))      # noise at q90 is ~1.5 bytes per pixel
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(
        buf, format="JPEG", quality=90)
    return buf.getvalue()


def m3_bench(root: Path, rows: int, unique_images: int, image_kb: int) -> dict:
    rng = np.random.default_rng(0)
    table = translations(16)
    (root / "rel/symile-m3-2-xs").mkdir(parents=True)
    (root / "rel/translations.json").write_text(json.dumps(table, ensure_ascii=False))
    imgs = [noise_jpeg(rng, image_kb) for _ in range(unique_images)]
    clips = [wav(rng, i % 2) for i in range(200)]
    for split, n in (("train", rows), ("val", rows // 20), ("test", rows // 20)):
        df = sample_rows(table, 2, n, seed=len(split))
        per_class = max(unique_images // len(table), 1)     # an image belongs to one class
        pos = {v["cls_id"]: i for i, v in enumerate(table.values())}
        ii = np.array([pos[c] for c in df.cls_id]) * per_class + rng.integers(0, per_class, n)
        ci = rng.integers(0, 200, n)
        t = pa.table({"lang": df.lang, "text": df.text, "cls": df.cls, "cls_id": df.cls_id,
                      "target_text": df.target_text,
                      "audio": [{"bytes": clips[i], "path": f"c{i}.wav"} for i in ci],
                      "image": [{"bytes": imgs[i], "path": None} for i in ii]})
        pq.write_table(t.select(hf_schema().names).cast(hf_schema()),
                       root / f"rel/symile-m3-2-xs/{split}-00000-of-00001.parquet",
                       row_group_size=100)
    src = _du(root / "rel")
    total = rows + 2 * (rows // 20)
    cfg = M3ReleaseConfig(source="parquet", local_dir=str(root / "rel"))
    rep, wall, cpu, rss = _in_child(import_release, cfg, root / "out")
    return {"rows": total, "unique_images": rep["images"]["unique"],
            "source_mb": round(src / 1e6, 1), "seconds": round(wall, 2),
            "cpu_s": round(cpu, 2), "rows_per_cpu_s": round(total / cpu),
            "rows_per_s": round(total / wall), "source_mb_per_s": round(src / 1e6 / wall, 1),
            "samples_bytes_per_row": round(_du(root / "out/samples") / total, 1),
            "media_mb": round((_du(root / "out/images") + _du(root / "out/clips")) / 1e6, 1),
            "import_peak_rss_mb": rss}


def csv_bench(root: Path, rows: int, unique_images: int, image_kb: int) -> dict:
    """The same kind of rows as split CSVs over an ILSVRC / Common Voice tree (read in place)."""
    import pandas as pd
    rng = np.random.default_rng(1)
    table = translations(16)
    per_class = max(unique_images // len(table), 1)
    for v in table.values():
        d = root / "imagenet/ILSVRC/Data/CLS-LOC/train" / v["synset_id"]
        d.mkdir(parents=True)
        for k in range(per_class):
            (d / f"{k}.JPEG").write_bytes(noise_jpeg(rng, image_kb))
    for i, lg in enumerate(("en", "el")):
        d = root / f"cv/cv/{lg}/clips"
        d.mkdir(parents=True)
        for k in range(100):
            (d / f"{k}.mp3").write_bytes(wav(rng, i, "MP3"))
    csvs = root / "csv/.csv_files/symile-m3-2-xs"
    csvs.mkdir(parents=True)
    (root / "csv/translations.json").write_text(json.dumps(table, ensure_ascii=False))
    syn = {v["cls_id"]: v["synset_id"] for v in table.values()}
    for split, n in (("train", rows), ("val", rows // 20), ("test", rows // 20)):
        df = sample_rows(table, 2, n, seed=len(split))
        df["image_path"] = [f"ILSVRC/Data/CLS-LOC/train/{syn[c]}/{k}.JPEG" for c, k in
                            zip(df.cls_id, rng.integers(0, per_class, n))]
        df["audio_path"] = [f"cv/{lg}/clips/{k}.mp3" for lg, k in
                            zip(df.lang, rng.integers(0, 100, n))]
        df["audio_filename"] = [Path(p).stem for p in df.audio_path]
        pd.DataFrame(df)[["lang", "audio_path", "audio_filename", "cls", "image_path", "cls_id",
                          "target_text", "text"]].to_csv(csvs / f"{split}.csv", index=False)
    total = rows + 2 * (rows // 20)
    cfg = M3ReleaseConfig(source="csv", csv_dir=str(root / "csv"),
                          imagenet_root=str(root / "imagenet"), common_voice_root=str(root / "cv"))
    rep, wall, cpu, rss = _in_child(import_release, cfg, root / "csv_out")
    return {"rows": total, "unique_images": rep["images"]["unique"],
            "unique_clips": rep["clips"]["unique"], "seconds": round(wall, 2),
            "cpu_s": round(cpu, 2), "rows_per_cpu_s": round(total / cpu),
            "rows_per_s": round(total / wall), "output_mb": round(_du(root / "csv_out") / 1e6, 2),
            "import_peak_rss_mb": rss}


def mimic_bench(root: Path, n: int) -> dict:
    import pandas as pd
    import torch

    from symile_data.mimic.release_tensors import import_tensors
    rng = np.random.default_rng(0)
    hadm = np.arange(n, dtype=np.int64) + 20_000_000
    splits = {"train": hadm[: n * 8 // 10], "val": hadm[n * 8 // 10: n * 9 // 10],
              "test": hadm[n * 9 // 10:]}
    mean = torch.tensor([0.485, 0.456, 0.406])[None, :, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None]
    rel = root / "mimic"

    def save(split: str, ids: np.ndarray, labels=None) -> None:
        d = rel / split
        d.mkdir(parents=True, exist_ok=True)
        g = torch.from_numpy(rng.integers(0, 256, (len(ids), 1, 320, 320), dtype=np.uint8))
        torch.save(((g.float() / 255).repeat(1, 3, 1, 1) - mean) / std, d / f"cxr_{split}.pt")
        torch.save(torch.rand(len(ids), 1, 5000, 12) * 2 - 1, d / f"ecg_{split}.pt")
        torch.save(torch.rand(len(ids), 50), d / f"labs_percentiles_{split}.pt")
        torch.save(torch.randint(0, 2, (len(ids), 50)), d / f"labs_missingness_{split}.pt")
        torch.save(torch.from_numpy(ids), d / f"hadm_id_{split}.pt")
        if labels is not None:
            torch.save(torch.from_numpy(labels[0]), d / f"label_hadm_id_{split}.pt")
            torch.save(torch.from_numpy(labels[1]), d / f"label_{split}.pt")

    def long(ids: np.ndarray):
        negs = [rng.choice(np.delete(ids, i), 9, replace=False) for i in range(len(ids))]
        rows = np.concatenate([ids, *negs])
        lab_h = np.concatenate([ids, np.repeat(ids, 9)])
        return rows, (lab_h, np.concatenate([np.ones(len(ids)), np.zeros(9 * len(ids))])
                      .astype(np.int64))
    save("train", splits["train"])
    save("val", splits["val"])
    for split, ids in (("val_retrieval", splits["val"]), ("test", splits["test"])):
        rows, labels = long(ids)
        save(split, rows, labels)
    for split in ("train", "val", "test"):
        pd.DataFrame({"subject_id": splits[split] // 3, "hadm_id": splits[split]}).to_csv(
            rel / f"{split}.csv", index=False)
    src = _du(rel)
    rep, wall, cpu, rss = _in_child(import_tensors, rel, root / "mimic_out")
    return {"admissions": n, "source_mb": round(src / 1e6, 1), "seconds": round(wall, 2),
            "cpu_s": round(cpu, 2), "admissions_per_cpu_s": round(n / cpu, 1),
            "admissions_per_s": round(n / wall, 1),
            "shard_bytes_per_admission": round(_du(root / "mimic_out") / n),
            "cxr_inexact_rows": rep["cxr_inexact_rows"], "import_peak_rss_mb": rss}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("rows", type=int, nargs="?", default=20_000)
    ap.add_argument("--unique-images", type=int, default=2000)
    ap.add_argument("--image-kb", type=int, default=110)
    ap.add_argument("--mimic", type=int, default=300)
    ap.add_argument("--tmp", default=None, help="scratch folder (default: the system temp)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="release-bench-", dir=a.tmp) as tmp:
        out = {"m3_parquet": m3_bench(Path(tmp), a.rows, a.unique_images, a.image_kb)}
        out["m3_csv"] = csv_bench(Path(tmp), a.rows, a.unique_images, a.image_kb)
        out["mimic_tensors"] = mimic_bench(Path(tmp), a.mimic)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
