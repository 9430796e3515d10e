"""Hub datasets as inputs: `hf://datasets/ORG/NAME[@REV][/PATH][?config=C&split=S]` -> the data files to read.

Which files, like `datasets` picks them:
1. the dataset card (README.md) lists `configs:` with `data_files` (a pattern, a list of patterns, or
   `[{split, path}]`): the chosen config (`config=`, else the one marked `default: true`, else `default`, else the
   first), its files of the chosen split (`split=`, else every split);
2. no configs in the card: every data file of the repository (or under PATH), with the split told by the file name
   (`train-00000-of-00002.parquet`, `data/test/...`) when `split=` is given.
Data files are those the row reader reads (parquet, arrow, jsonl / json, plain or .gz / .zst).

The Hub is reached through `huggingface_hub.HfFileSystem` (fsspec): files are listed and read in ranges, never
downloaded whole. `hub_filesystem()` is the one place that talks to the network (tests put a local folder laid out
like a Hub repository behind it). Private or gated datasets use the token of `hf auth login` / `HF_TOKEN`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

HF_DATASETS = "hf://datasets/"
SPLIT_NAMES = ("train", "validation", "valid", "dev", "test", "eval")


class HubError(ValueError):
    """A Hub input that cannot be used (bad URL, unknown config or split, no data files): a usage error."""


@dataclass(frozen=True)
class HubRef:
    repo_id: str  # ORG/NAME
    revision: str = ""  # branch, tag or commit ("" = the default branch)
    path: str = ""  # a folder or file inside the repository ("" = the whole repository)
    config: str = ""
    split: str = ""

    @property
    def root(self) -> str:
        """The repository root as an HfFileSystem path: datasets/ORG/NAME[@REV]."""
        rev = f"@{quote(self.revision, safe='')}" if self.revision else ""
        return f"datasets/{self.repo_id}{rev}"


def is_hub_url(text: str) -> bool:
    return str(text).startswith(HF_DATASETS)


def parse_hub_url(url: str) -> HubRef:
    if not is_hub_url(url):
        raise HubError(f"{url!r}: Hub dataset inputs look like hf://datasets/ORG/NAME[@REV]")
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"config", "split"}
    if unknown:
        raise HubError(f"{url!r}: unknown option(s) {', '.join(sorted(unknown))} (known: config, split)")
    rest = url[len(HF_DATASETS) :].split("?", 1)[0].strip("/")
    segments = rest.split("/")
    if len(segments) < 2 or not segments[0] or not segments[1]:
        raise HubError(f"{url!r}: expected hf://datasets/ORG/NAME[@REV]")
    name, _, revision = segments[1].partition("@")
    if not re.fullmatch(r"[\w.-]+", segments[0]) or not re.fullmatch(r"[\w.-]+", name):
        raise HubError(f"{url!r}: {segments[0]}/{name} is not a dataset name")
    return HubRef(
        repo_id=f"{segments[0]}/{name}",
        revision=revision,
        path="/".join(segments[2:]),
        config=query.get("config", ""),
        split=query.get("split", ""),
    )


def hub_filesystem():
    """The network edge: an fsspec filesystem over the Hub (paths `datasets/ORG/NAME[@REV]/...`)."""
    from huggingface_hub import HfFileSystem

    return HfFileSystem()


def list_hub_files(url: str, is_data_file) -> list[str]:
    """hf:// URLs of the data files of a Hub dataset input, sorted (see the module docstring)."""
    ref = parse_hub_url(url)
    fs = hub_filesystem()
    root = ref.root
    if not fs.exists(root):
        raise HubError(f"{url}: dataset {ref.repo_id} (revision {ref.revision or 'default'}) not found")
    if ref.path and fs.isfile(f"{root}/{ref.path}"):
        return [f"hf://{root}/{ref.path}"]
    configs = card_configs(_read_card(fs, root))
    if configs and not ref.path:
        files = _config_files(fs, root, configs, ref, url)
    else:
        if ref.config:
            raise HubError(f"{url}: config={ref.config} given but the dataset card declares no configs")
        base = f"{root}/{ref.path}" if ref.path else root
        files = [p for p in sorted(fs.find(base)) if is_data_file(p)]
        if ref.split:
            files = [p for p in files if split_of_file(p[len(root) + 1 :]) == ref.split]
    files = [p for p in dict.fromkeys(files) if is_data_file(p)]
    if not files:
        what = f"config {ref.config or 'default'}, split {ref.split or 'any'}"
        raise HubError(f"{url}: no data files ({what})")
    return [f"hf://{p}" for p in files]


def _read_card(fs, root: str) -> str:
    try:
        with fs.open(f"{root}/README.md", "rb") as f:
            return f.read(1 << 20).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def card_configs(card: str) -> list[dict[str, Any]]:
    """The `configs:` list of a dataset card's YAML header ([] when there is none)."""
    import yaml

    m = re.match(r"---\s*\n(.*?)\n---\s*(\n|$)", card, re.S)
    if not m:
        return []
    try:
        header = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return []
    configs = header.get("configs") if isinstance(header, dict) else None
    return [c for c in configs if isinstance(c, dict) and c.get("config_name")] if isinstance(configs, list) else []


def _config_files(fs, root: str, configs: list[dict], ref: HubRef, url: str) -> list[str]:
    names = [str(c["config_name"]) for c in configs]
    if ref.config:
        chosen = next((c for c in configs if str(c["config_name"]) == ref.config), None)
        if chosen is None:
            raise HubError(f"{url}: no config {ref.config!r} (configs: {', '.join(names)})")
    else:
        chosen = next((c for c in configs if c.get("default")), None) or next(
            (c for c in configs if c["config_name"] == "default"), configs[0]
        )
    data_files = chosen.get("data_files") or []
    if isinstance(data_files, str | dict):
        data_files = [data_files]
    by_split: dict[str, list[str]] = {}
    for entry in data_files:
        if isinstance(entry, str):
            by_split.setdefault("train", []).append(entry)
        elif isinstance(entry, dict):
            paths = entry.get("path") or []
            by_split.setdefault(str(entry.get("split") or "train"), []).extend(
                [paths] if isinstance(paths, str) else list(paths)
            )
    if ref.split and ref.split not in by_split:
        raise HubError(
            f"{url}: config {chosen['config_name']} has no split {ref.split!r} (splits: {', '.join(by_split)})"
        )
    patterns = by_split[ref.split] if ref.split else [p for ps in by_split.values() for p in ps]
    files: list[str] = []
    for pattern in patterns:
        pattern = pattern.lstrip("/")
        if any(ch in pattern for ch in "*?["):
            files += sorted(fs.glob(f"{root}/{pattern}"))
        elif fs.isfile(f"{root}/{pattern}"):
            files.append(f"{root}/{pattern}")
        else:
            files += sorted(p for p in fs.find(f"{root}/{pattern}"))
    return files


def split_of_file(rel_path: str) -> str:
    """The split a data file belongs to by the Hub's naming conventions ("" when the name tells none)."""
    for part in rel_path.lower().split("/"):
        stem = part.split(".", 1)[0]
        for split in SPLIT_NAMES:
            if stem == split or fnmatch.fnmatch(stem, f"{split}[-_]*") or fnmatch.fnmatch(stem, f"*[-_]{split}"):
                return split
    return ""
