"""Subcommands ``publish``, ``export-reference`` and ``export-wds``.

Exit codes: 0 done; 1 published but the remote check found problems; 2 refused or failed (the
message on stderr says why).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from symile_data.stage import Command, add_command


def _publish(args: argparse.Namespace) -> int:
    from symile_data.io.lock import check_no_writer
    from symile_data.publish.hub import dataset_dirs, publish
    if args.dir.is_dir():                       # a folder being written is not published
        for d in [args.dir, *dataset_dirs(args.dir)]:
            check_no_writer(d)
    report = publish(args.dir, args.repo_id, private=args.private, dry_run=args.dry_run,
                     max_files_per_commit=args.max_files_per_commit, license=args.license)
    return 1 if report["problems"] else 0


def _export_reference(args: argparse.Namespace) -> int:
    from symile_data.publish.reference import export_reference
    record = export_reference(args.dir, args.out, retrieval=args.retrieval,
                              missingness_prob=args.missingness_prob,
                              text_enc_hidden_sz=args.text_enc_hidden_sz)
    print(f"{args.out}: {record['kind']} reference layout, {len(record['files'])} file(s)")
    return 0


def _export_wds(args: argparse.Namespace) -> int:
    from symile_data.publish.wds_export import export_wds
    manifests = export_wds(args.dir, args.out, samples_per_shard=args.samples_per_shard)
    for m in manifests:
        print(f"{m['name']}: " + json.dumps({s: i["rows"] for s, i in m["splits"].items()}))
    return 0


def _publish_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="a dataset dir or a root holding one per config")
    p.add_argument("--repo-id", required=True, help="ORG/NAME of the dataset repo")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (files, sizes, commits) and the card; writes and "
                   "uploads nothing")
    p.add_argument("--license", default="other", help="card licence id (default: other)")
    p.add_argument("--max-files-per-commit", type=int, default=100)


def _export_reference_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="M3 training dataset, or MIMIC samples (+ retrieval)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--retrieval", type=Path, help="MIMIC retrieval dataset dir (default: "
                   "found under DIR, or beside DIR as the import writes it)")
    p.add_argument("--missingness-prob", type=float, help="M3 missingness p used in file "
                   "names, when the manifest does not record it")
    p.add_argument("--text-enc-hidden-sz", type=int, help="M3 text model hidden size for "
                   "metadata.json when its config cannot be read offline (default: from the "
                   "text model's config)")


def _export_wds_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="a Parquet dataset dir or a root holding several")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--samples-per-shard", type=int, default=1000)


# publish writes nothing locally (the card is made in memory): it locks nothing, but refuses
# a folder a writer holds. The exporters lock OUT and sweep what killed runs left inside
# export_reference / export_wds (also for library callers), AFTER checking their sources: a
# refused export (unlabelled MIMIC content, OUT inside the source) creates no OUT.
PUBLISH = Command("publish", "upload dataset dirs to the Hugging Face Hub with a card "
                  "(refuses MIMIC-derived data by flag, lineage, schema, columns, shapes or "
                  "sources; token from HF_TOKEN or the HF login)", _publish_args, _publish)
EXPORT_REFERENCE = Command("export-reference", "write the rajesh-lab/symile tensor layout "
                           "(.pt/.txt per split) from M3 training or MIMIC shards",
                           _export_reference_args, _export_reference)
EXPORT_WDS = Command("export-wds", "write WebDataset tars from Parquet shards",
                     _export_wds_args, _export_wds)


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "publish", PUBLISH)
    add_command(sub, "export-reference", EXPORT_REFERENCE)
    add_command(sub, "export-wds", EXPORT_WDS)
