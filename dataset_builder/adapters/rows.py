"""Dataset rows -> Trajectories: one run per row, in any of the row layouts, from parquet, arrow or jsonl / JSON.

    read_rows("data/train-00000-of-00004.parquet")            # layout detected for the file
    read_rows("runs.jsonl", layout="sharegpt-rows")            # forced (--format sharegpt-rows)

The layout is detected once per file, from its columns and first rows (ROW_LAYOUTS, in this order: the first whose
`matches(rows)` accepts them); every row is then read with it. Column aliases are in row_fields.py, tool names in
tool_kinds.py, what every layout shares (steps, domain, question, answer, patch) in row_build.py. Each row becomes a
Trajectory or a Reject whose origin is `<shard>#<row>`: a null or unknown turns cell, a broken JSON string cell,
an oversized row, an unreadable shard (one reject for the file); the other rows are read all the same.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from types import ModuleType
from typing import Any

from dataset_builder.adapters.row_build import build
from dataset_builder.adapters.row_fields import row_fields
from dataset_builder.readers.rows import RowItem, iter_rows
from dataset_builder.schema import Reject, Trajectory

ROW_LAYOUTS = ("adp_rows", "role_text_rows", "sharegpt_rows", "chat_rows")
PEEK_ROWS = 8
# plain JSON/JSONL files are left to the file adapters (openai_messages) unless a row says it is a dataset row
DATASET_ROW_SIGNALS = re.compile(
    r'"(test_result|git_patch|generated_patch|run_id|target|resolved|trajectory_id|traj_id)"\s*:'
    r'|"(messages|conversations)"\s*:\s*"\['
    r"|\"(available_tools|target_tools)\"\s*:|<function=[\w.-]+>|Action:\s*Operation"
)


def layouts() -> list[ModuleType]:
    return [importlib.import_module(f"dataset_builder.adapters.{name}") for name in ROW_LAYOUTS]


def layout_names() -> list[str]:
    return [m.NAME for m in layouts()]


def detect_layout(rows: list[dict[str, Any]]) -> ModuleType | None:
    cells = []
    for row in rows:
        try:
            cells.append(row_fields(row).turns)
        except ValueError:
            continue
    cells = [c for c in cells if isinstance(c, list) and c]
    for module in layouts():
        if cells and module.matches(cells):
            return module
    return None


def has_row_signals(head: str) -> bool:
    return DATASET_ROW_SIGNALS.search(head) is not None


def read_rows(path: str | Path, layout: str | None = None) -> Iterator[Trajectory | Reject]:
    path = str(path)
    items = iter_rows(path)
    peeked: list[RowItem] = []
    for item in items:
        peeked.append(item)
        if sum(1 for p in peeked if p.row is not None) >= PEEK_ROWS:
            break
    module = next((m for m in layouts() if m.NAME == layout), None) if layout else None
    if module is None:
        module = detect_layout([p.row for p in peeked if p.row is not None])
    stem = re.sub(r"\.(parquet|arrow|jsonl|ndjson|json)(\.(gz|zst|zstd))?$", "", path.rsplit("/", 1)[-1])
    for item in chain(peeked, items):
        if item.row is None:
            yield Reject(origin=item.origin, reason=item.error, source=module.NAME if module else "")
            continue
        default_id = f"{stem}#{item.origin.rsplit('#', 1)[-1]}"
        yield read_row(item.row, item.origin, default_id, module)


def read_row(row: dict[str, Any], origin: str, default_id: str, module: ModuleType | None) -> Trajectory | Reject:
    source = module.NAME if module else ""
    try:
        fields = row_fields(row)
    except ValueError as err:
        return Reject(origin, f"the turns cell is a JSON string that does not parse: {err}", source)
    columns = ", ".join(list(row)[:12])
    if fields.turns is None:
        return Reject(origin, f"no turns: the messages cell is null or missing (columns: {columns})", source)
    if not isinstance(fields.turns, list):
        what = type(fields.turns).__name__
        return Reject(origin, f"the {fields.turns_key} cell is a {what}, not a list of turns", source)
    if module is None or not module.matches([fields.turns]):
        known = ", ".join(layout_names())
        shape = _shape(fields.turns)
        return Reject(
            origin, f"unknown row layout: {fields.turns_key} items look like {shape} (known: {known})", source
        )
    try:
        turns = module.turns(fields.turns, fields)
        return build(turns, fields, source, origin, default_id)
    except Exception as err:  # a format drift in one row must not stop a shard of thousands
        return Reject(origin, f"{source} layout failed on this row: {type(err).__name__}: {err}", source)


def _shape(cell: list[Any]) -> str:
    first = next((x for x in cell if x is not None), None)
    if isinstance(first, dict):
        return "{" + ", ".join(sorted(first)[:6]) + "}"
    return json.dumps(first)[:60] if first is not None else "null"
