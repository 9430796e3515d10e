"""Format adapters: one module per trajectory format, each turning files into `Trajectory` objects.

Every adapter module defines:

    NAME: str                       # the --format name and the `source` of its trajectories
    DOMAIN: str | None              # "search" | "swe" | "sql", or None when it depends on the content
    def sniff(path: Path, head: str) -> bool
        # cheap detection from the file name and the first 64 KiB of text; no full parse
    def read(path: Path) -> Iterator[Trajectory | Reject]
        # yields one item per trajectory in the file (a Reject for each one it cannot use, with where and why);
        # an unreadable file is one Reject. Adapters never execute code or SQL found in a trajectory.

`read_file` wraps any adapter so that no exception escapes: a crash becomes a Reject naming the file.

Dataset files (parquet, arrow, compressed jsonl / JSON, hf:// files) go to the row adapters (rows.py: one run per
row, layout detected per file); plain JSON / JSONL files go to them when their rows look like dataset rows (the
row layouts' sniffs, before the generic openai_messages).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from dataset_builder.adapters.common import TextFileError, read_head
from dataset_builder.schema import Reject, Trajectory

# Detection order matters: specific formats first, the generic chat-messages adapter last.
ADAPTER_MODULES = (
    "swe_agent",
    "mini_swe_agent",
    "openhands",
    "openhands_bird",
    "smolagents",
    "react_text",
    "search_r1",
    "spider_agent",
    "langgraph",
    "adp_rows",
    "role_text_rows",
    "sharegpt_rows",
    "chat_rows",
    "openai_messages",
)


def adapters() -> list[ModuleType]:
    return [importlib.import_module(f"dataset_builder.adapters.{name}") for name in ADAPTER_MODULES]


def format_names() -> list[str]:
    return [m.NAME for m in adapters()]


def get_adapter(name: str) -> ModuleType:
    for module in adapters():
        if module.NAME == name:
            return module
    raise ValueError(f"unknown format {name!r}; known formats: {', '.join(format_names())}")


def detect(path: Path) -> ModuleType | None:
    head = read_head(path)
    for module in adapters():
        if module.sniff(path, head):
            return module
    return None


def read_file(path: str | Path, fmt: str | None = None) -> Iterator[Trajectory | Reject]:
    """All trajectories of one file, or Rejects saying why not. Never raises for bad input."""
    from dataset_builder.readers import is_binary_dataset_file, is_hub_url

    if is_hub_url(str(path)) or is_binary_dataset_file(path):
        yield from _read_dataset_file(str(path), fmt)
        return
    path = Path(path)
    try:
        module = get_adapter(fmt) if fmt else detect(path)
    except TextFileError as err:
        yield Reject(origin=str(path), reason=str(err))
        return
    except Exception as err:  # a sniffer that chokes on the file (deep nesting, encoding, memory) rejects the file
        yield Reject(origin=str(path), reason=f"format detection failed: {type(err).__name__}: {str(err)[:300]}")
        return
    if module is None:
        yield Reject(
            origin=str(path),
            reason=f"unknown format: no adapter recognises this file (try --format; known: {', '.join(format_names())})",
        )
        return
    n_yielded = 0
    try:
        for item in module.read(path):
            n_yielded += 1
            yield item
    except TextFileError as err:
        yield Reject(origin=str(path), reason=str(err), source=module.NAME)
    except Exception as err:  # a bug or a format drift must not kill a run over thousands of files
        where = f"{path} (after {n_yielded} items)" if n_yielded else str(path)
        yield Reject(
            origin=where, reason=f"{module.NAME} adapter failed: {type(err).__name__}: {err}", source=module.NAME
        )


def _read_dataset_file(path: str, fmt: str | None) -> Iterator[Trajectory | Reject]:
    from dataset_builder.adapters.rows import layout_names, read_rows

    if fmt and fmt not in layout_names():
        yield Reject(origin=path, reason=f"--format {fmt} reads trajectory files; dataset rows need one of: "
                     f"{', '.join(layout_names())} (or no --format)", source=fmt)  # fmt: skip
        return
    n_yielded = 0
    try:
        for item in read_rows(path, fmt):
            n_yielded += 1
            yield item
    except Exception as err:  # a reader bug must not kill a run over thousands of shards
        where = f"{path} (after {n_yielded} rows)" if n_yielded else path
        yield Reject(origin=where, reason=f"row reader failed: {type(err).__name__}: {err}")
