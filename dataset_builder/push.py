"""Upload a compiled ACC dataset directory to the Hugging Face Hub as a dataset repository.

    acc push acc_data --repo my-org/acc-data [--private] [--revision BRANCH] [--token-env HF_TOKEN]

Before any network call, everything it would upload (card, stats.json, rejects.jsonl, every shard row) is scanned for
credentials and personal data (`dataset_builder.secrets`, the scan `acc compile` redacts with); if anything is found
it stops with the locations (file, row, field, type; never the value) and exit code 3, unless `--allow-secrets`.
Values known to be public can be listed in `--secrets-allowlist FILE` (one per line). The local `secrets.jsonl`
(compile's findings) is never uploaded.

Creates the repository if needed (`HfApi.create_repo(repo_type="dataset", exist_ok=True)`), rewrites the card's usage
example with the repository id, and uploads with `HfApi.upload_folder`: README.md, data/ shards (train and test),
rejects.jsonl, stats.json and plots/. Shards and plots on the Hub that the local directory no longer has are deleted
in the same commit, so `load_dataset("my-org/acc-data", "swe")` then reads exactly what `acc compile` wrote.
Large datasets: with huggingface_hub >= 1.x and hf_xet (a dependency of huggingface_hub), `upload_folder` streams
files while hashing them, commits in several batches to stay under the Hub's limits, and resumes when run again
(committed files are skipped, uploaded chunks deduplicated): `acc push` run again after an interruption continues.
The staging copy links the shards (no copy) and rewrites only the small text files.

The local directory keeps its absolute paths (`acc traces` finds the databases through stats.json), but what goes to
the Hub names none: in the card, stats.json and rejects.jsonl, paths under the compiled inputs' folders become
relative (as the records' `meta.origin` already are), other directories of the compile (--db-dir, --repos,
--page-cache, --out) become `<local>/NAME`, and the home directory becomes `~`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

SHARDS = "data/*/*-of-*.parquet"  # train and test shards
UPLOAD_PATTERNS = ["README.md", "stats.json", "rejects.jsonl", SHARDS, "plots/*.png"]
REPLACED_PATTERNS = [SHARDS, "plots/*.png"]  # remote files of these kinds not in DIR are deleted
TEXT_FILES = ("README.md", "stats.json", "rejects.jsonl")  # the files that can name local paths
MAX_LISTED = 50  # findings printed when a push is refused

log = logging.getLogger("acc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a directory written by `acc compile --out DIR`")
    parser.add_argument("--repo", required=True, metavar="ORG/NAME", help="dataset repository id on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repository as private (if it is new)")
    parser.add_argument("--revision", metavar="BRANCH", help="push to this branch (created if missing) instead of main")
    parser.add_argument(
        "--token-env",
        metavar="VAR",
        default=None,
        help="environment variable holding the Hub token (default: HF_TOKEN, else the token saved by `hf auth login`)",
    )
    parser.add_argument("--message", default=None, help="commit message (default: 'Upload ACC dataset')")
    parser.add_argument(
        "--allow-secrets",
        action="store_true",
        help="upload even if the pre-upload scan finds credentials or personal data (they are listed as warnings)",
    )
    parser.add_argument(
        "--secrets-allowlist",
        metavar="FILE",
        default=None,
        help="values known to be public (one per line) that the pre-upload scan does not report",
    )


def check_dataset_dir(path: Path) -> list[str]:
    """Problems that make DIR not a compiled dataset (empty when it is one)."""
    if not path.is_dir():
        return [f"{path} is not a directory"]
    problems = []
    for name in ("README.md", "stats.json"):
        if not (path / name).is_file():
            problems.append(f"{path / name} is missing")
    if not list(path.glob(SHARDS)):
        problems.append(f"no parquet shards under {path / 'data'} (was `acc compile --out {path}` run, with records?)")
    return problems


def local_paths(path: Path) -> list[tuple[str, str]]:
    """(absolute local path, what it becomes on the Hub), in the order to apply them, from stats.json's settings.

    The compiled inputs' folders go first, so that everything under them (a --db-dir inside the inputs too) reads
    as the records' `meta.origin` do; then the other directories, the longest first."""
    settings = json.loads((path / "stats.json").read_text()).get("settings") or {}
    inputs = {str(Path(p).parent): "" for p in settings.get("inputs") or []}
    others = {str(Path.home()): "~", str(path.resolve()): f"<local>/{path.resolve().name}"}
    for key in ("db_dir", "repos_dir", "page_cache_dir", "secrets_allowlist"):
        if settings.get(key):
            others[settings[key]] = f"<local>/{Path(settings[key]).name}"
    return _longest_first(inputs) + _longest_first(others)


def _longest_first(paths: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(((p, new) for p, new in paths.items() if p not in ("", "/")), key=lambda kv: -len(kv[0]))


def without_local_paths(text: str, pairs: list[tuple[str, str]]) -> str:
    """`text` with each local path replaced, as a whole path component only (/data/run is not in /data/runs)."""
    for local, new in pairs:
        text = re.sub(re.escape(local) + r"(/|(?![\w.-]))", lambda m, new=new: (new + m.group(1)).lstrip("/"), text)
    return text


def stage_for_hub(path: Path, staging: Path) -> None:
    """The files to upload, in `staging`: the text files without local paths, the rest linked (or copied)."""
    pairs = local_paths(path)
    for pattern in UPLOAD_PATTERNS:
        for src in path.glob(pattern):
            dst = staging / src.relative_to(path)
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.name in TEXT_FILES and src.parent == path:
                dst.write_text(without_local_paths(src.read_text(encoding="utf-8"), pairs), encoding="utf-8")
            else:
                try:
                    os.link(src, dst)
                except OSError:  # another file system
                    shutil.copy2(src, dst)


class SecretsFound(Exception):
    """The files to upload hold credentials or personal data; nothing was sent."""

    def __init__(self, locations: list):
        self.locations = locations
        super().__init__(f"{len(locations)} credentials or personal data found in the files to upload")


def check_upload(staging: Path, allowlist: str | Path | None = None) -> list:
    """Every finding in the staged files (what would be uploaded), as `secrets.Location`s."""
    from dataset_builder.secrets import Scanner, load_allowlist, scan_files

    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    return scan_files(staging, files, Scanner(load_allowlist(allowlist)))


def push(
    path: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    message: str | None = None,
    allow_secrets: bool = False,
    secrets_allowlist: str | Path | None = None,
):
    """Create the dataset repo if needed and upload DIR; returns the CommitInfo of the upload.

    Raises SecretsFound, before any network call, when the staged files hold credentials or personal data (unless
    `allow_secrets`)."""
    from huggingface_hub import HfApi

    from dataset_builder.writer import write_card

    path = Path(path)
    problems = check_dataset_dir(path)
    if problems:
        raise ValueError("; ".join(problems))
    write_card(path, repo_id=repo_id)
    with tempfile.TemporaryDirectory(prefix="acc-push-") as staging:
        stage_for_hub(path, Path(staging))
        found = check_upload(Path(staging), secrets_allowlist)
        if found and not allow_secrets:
            raise SecretsFound(found)
        for loc in found:
            log.warning("uploading with --allow-secrets: %s", loc)
        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=staging,
            repo_type="dataset",
            revision=revision,
            commit_message=message or "Upload ACC dataset",
            allow_patterns=UPLOAD_PATTERNS,
            delete_patterns=REPLACED_PATTERNS,
        )


def run(args: argparse.Namespace) -> int:
    if "/" not in args.repo:
        print(f"error: --repo must be ORG/NAME (or USER/NAME), got {args.repo!r}", file=sys.stderr)
        return 2
    token = None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            print(f"error: --token-env {args.token_env}: that environment variable is not set", file=sys.stderr)
            return 2
    else:
        token = os.environ.get("HF_TOKEN") or None
    try:
        info = push(
            args.dir,
            args.repo,
            private=args.private,
            revision=args.revision,
            token=token,
            message=args.message,
            allow_secrets=getattr(args, "allow_secrets", False),
            secrets_allowlist=getattr(args, "secrets_allowlist", None),
        )
    except SecretsFound as err:
        print(f"error: nothing was uploaded: {err} (values not shown):", file=sys.stderr)
        for loc in err.locations[:MAX_LISTED]:
            print(f"  {loc}", file=sys.stderr)
        if len(err.locations) > MAX_LISTED:
            print(f"  ... and {len(err.locations) - MAX_LISTED} more", file=sys.stderr)
        print(
            "remove them (recompile with `acc compile --secrets redact`), list known-public values in "
            "--secrets-allowlist FILE, or upload anyway with --allow-secrets",
            file=sys.stderr,
        )
        return 3
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    url = getattr(info, "commit_url", None) or f"https://huggingface.co/datasets/{args.repo}"
    print(f"uploaded {args.dir} to {url}")
    print(f'load it with: load_dataset("{args.repo}", "all")')
    return 0
