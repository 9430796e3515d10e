"""Dataset inputs: which files to read (local paths and Hub datasets) and their rows, streamed.

    list_inputs(["runs/", "hf://datasets/nebius/SWE-agent-trajectories?split=train"])
        -> ["runs/a.jsonl", "hf://datasets/nebius/SWE-agent-trajectories/data/train-00000-of-00004.parquet", ...]
    iter_rows(path) -> RowItem(origin="<shard>#<row>", row=dict | None, error="")   (readers/rows.py)

Every listed file is then read with `dataset_builder.adapters.read_file(path)`, which sends dataset files (parquet,
arrow, compressed jsonl, and jsonl / JSON whose rows a row layout recognises) to the row adapters.
Task tables (`--tasks`) are in readers/tasks.py; Hub URL syntax and config/split selection in readers/hub.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from dataset_builder.readers.hub import HubError, is_hub_url, list_hub_files
from dataset_builder.readers.rows import RowItem, file_kind, iter_rows

__all__ = [
    "HubError",
    "RowItem",
    "file_kind",
    "input_files",
    "is_dataset_file",
    "is_hub_url",
    "iter_rows",
    "list_inputs",
]


def is_dataset_file(path: str | Path) -> bool:
    """A file the row reader can read (by name): parquet, arrow, jsonl / json, plain or .gz / .zst."""
    return bool(file_kind(str(path))[0])


def is_binary_dataset_file(path: str | Path) -> bool:
    """A dataset file only the row reader reads: parquet, arrow, or compressed jsonl / json."""
    kind, compression = file_kind(str(path))
    return kind in ("parquet", "arrow") or (kind in ("jsonl", "json") and bool(compression))


def input_files(inputs: list[str | Path]) -> list[tuple[str, str]]:
    """(file, base) for every input file, each once, in input order then sorted: hf:// datasets expanded to their data
    files (base "": the URL is the origin), directories walked recursively (hidden entries skipped; base = the
    directory's parent, so origins name the folder given). Raises FileNotFoundError / HubError for an input that
    does not exist (a usage error, not a reject)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in inputs:
        text = str(item)
        if is_hub_url(text):
            files, base = list_hub_files(text, is_dataset_file), ""
        else:
            path = Path(text)
            if not path.exists():
                raise FileNotFoundError(f"input not found: {path}")
            files, base = [str(path)], str(path.parent)
            if path.is_dir():
                files = []
                for root, dirs, names in os.walk(path):
                    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                    files += [str(Path(root) / n) for n in sorted(names) if not n.startswith(".")]
        for f in files:
            key = f if is_hub_url(f) else str(Path(f).resolve())
            if key not in seen and (is_hub_url(f) or Path(f).is_file()):
                seen.add(key)
                out.append((f, base))
    return out


def list_inputs(inputs: list[str | Path]) -> list[str]:
    """The files of `input_files`, without their bases."""
    return [f for f, _ in input_files(inputs)]
