"""Loading an ACC dataset (a local folder written by `acc compile`, or a Hub repo) without stale caches.

    ds = load_acc_split("acc_data", "swe", split="train")

Why not plain `load_dataset(DIR, CONFIG)` for a local folder: datasets (5.2) keys the Arrow cache of a folder whose card
declares `configs:` by the folder's *name* and the config, not by the files' paths or modification times. Recompiling
into `acc_data/` (or compiling another corpus into any folder named `acc_data`) and loading again returns the rows
cached the first time: a run would train on data that is no longer on disk. Here a local folder's card is read, its
config's file patterns resolved, and the files handed to the `parquet` builder, whose cache key includes each file's
path and mtime. Hub ids go through `load_dataset(REPO, CONFIG)`, whose cache is keyed by the commit.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def local_card_configs(folder: str | Path) -> dict[str, dict[str, list[str]]]:
    """{config: {split: [file, ...]}} from the `configs:` of a local dataset folder's README card (files sorted)."""
    folder = Path(folder)
    card = folder / "README.md"
    if not card.is_file():
        return {}
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}
    header = text.split("---", 2)[1]
    meta = yaml.safe_load(header) or {}
    configs: dict[str, dict[str, list[str]]] = {}
    for cfg in meta.get("configs") or []:
        splits: dict[str, list[str]] = {}
        entries = cfg.get("data_files") or []
        if isinstance(entries, str):
            entries = [{"split": "train", "path": entries}]
        for entry in entries:
            patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            files = sorted({str(f) for p in patterns for f in folder.glob(p) if f.is_file()})
            splits.setdefault(entry.get("split", "train"), []).extend(files)
        configs[cfg["config_name"]] = splits
    return configs


def acc_config_names(path: str) -> list[str]:
    """The configs of a local ACC folder (from its card) or a Hub dataset."""
    if Path(path).is_dir():
        return list(local_card_configs(path))
    from datasets import get_dataset_config_names

    return get_dataset_config_names(path)


def load_acc_split(path: str, config: str | None = None, split: str = "train"):
    """One split of one config. A local folder without card configs is read as its parquet files under data/."""
    from datasets import load_dataset

    folder = Path(path)
    if not folder.is_dir():
        return load_dataset(path, config, split=split)
    configs = local_card_configs(folder)
    if configs:
        name = config or ("all" if "all" in configs else next(iter(configs)))
        if name not in configs:
            raise ValueError(f"{path}: no config {name!r} in its card (configs: {', '.join(configs)})")
        files = configs[name].get(split)
        if not files:
            raise ValueError(f"{path}: config {name!r} has no files for split {split!r} ({sorted(configs[name])})")
    else:
        files = sorted(str(f) for f in folder.glob(f"data/**/{split}-*.parquet"))
        if not files:
            raise FileNotFoundError(f"{path}: no card with configs and no data/**/{split}-*.parquet files")
    return load_dataset("parquet", data_files={split: files}, split=split)
