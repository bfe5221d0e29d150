"""Subcommands ``publish``, ``export-reference`` and ``export-wds``.

Exit codes: 0 done; 1 published but the remote check found problems; 2 refused or failed (the
message on stderr says why).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from symile_data.io.manifest import ManifestError


def _publish(args: argparse.Namespace) -> int:
    from symile_data.publish.hub import PublishError, publish
    try:
        report = publish(args.dir, args.repo_id, private=args.private, dry_run=args.dry_run,
                         max_files_per_commit=args.max_files_per_commit, license=args.license)
    except (PublishError, ManifestError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1 if report["problems"] else 0


def _export_reference(args: argparse.Namespace) -> int:
    from symile_data.publish.reference import export_reference
    try:
        record = export_reference(args.dir, args.out, retrieval=args.retrieval,
                                  missingness_prob=args.missingness_prob,
                                  text_enc_hidden_sz=args.text_enc_hidden_sz)
    except (ValueError, ManifestError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: {record['kind']} reference layout, {len(record['files'])} file(s)")
    return 0


def _export_wds(args: argparse.Namespace) -> int:
    from symile_data.publish.wds_export import export_wds
    try:
        manifests = export_wds(args.dir, args.out, samples_per_shard=args.samples_per_shard)
    except (ValueError, ManifestError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for m in manifests:
        print(f"{m['name']}: " + json.dumps({s: i["rows"] for s, i in m["splits"].items()}))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("publish", help="upload dataset dirs to the Hugging Face Hub with a card "
                       "(refuses MIMIC-derived data by flag, schema, columns or sources; "
                       "token from HF_TOKEN or the HF login)")
    p.add_argument("dir", type=Path, help="a dataset dir or a root holding one per config")
    p.add_argument("--repo-id", required=True, help="ORG/NAME of the dataset repo")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (files, sizes, commits) and the card; writes and "
                   "uploads nothing")
    p.add_argument("--license", default="other", help="card licence id (default: other)")
    p.add_argument("--max-files-per-commit", type=int, default=100)
    p.set_defaults(func=_publish)

    p = sub.add_parser("export-reference", help="write the rajesh-lab/symile tensor layout "
                       "(.pt/.txt per split) from M3 training or MIMIC shards")
    p.add_argument("dir", type=Path, help="M3 training dataset, or MIMIC samples (+ retrieval)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--retrieval", type=Path, help="MIMIC retrieval dataset dir (default: "
                   "found under DIR)")
    p.add_argument("--missingness-prob", type=float, help="M3 missingness p used in file "
                   "names, when the manifest does not record it")
    p.add_argument("--text-enc-hidden-sz", type=int, help="M3 text model hidden size for "
                   "metadata.json when its config cannot be read offline (default: from the "
                   "text model's config)")
    p.set_defaults(func=_export_reference)

    p = sub.add_parser("export-wds", help="write WebDataset tars from Parquet shards")
    p.add_argument("dir", type=Path, help="a Parquet dataset dir or a root holding several")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--samples-per-shard", type=int, default=1000)
    p.set_defaults(func=_export_wds)
