"""Scanning the files of a dataset folder as they would be uploaded (what `acc push` checks before any network call).

    locations = scan_files(staging_dir, ["README.md", "stats.json", "rejects.jsonl", "data/swe/train-...parquet"])

Parquet rows of ACC records are scanned like `scan_record` scans a record (every text it carries; the context,
prompt and completion when they are not renderings of the rest); JSON / JSONL files string by string; other text
files line by line; binary files (plots) are skipped. A `Location` names the file, the row (the line of a text or
JSONL file, the row of a shard), the field and the type, never the value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataset_builder.schema import ACCRecord
from dataset_builder.secrets.records import meta_strings, record_texts
from dataset_builder.secrets.scan import Scanner

BATCH_ROWS = 256
ACC_COLUMNS = {"id", "pieces", "context", "question", "meta"}


@dataclass(frozen=True)
class Location:
    file: str
    row: int | None  # 1-based line of a text/JSONL file, 0-based row of a parquet shard; None for a JSON file
    field: str
    type: str

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file} row {self.row}"
        return f"{where}, {self.field}: {self.type}"


def scan_files(root: Path, files: Iterable[str], scanner: Scanner | None = None) -> list[Location]:
    scanner = scanner or Scanner()
    found: list[Location] = []
    for rel in files:
        path = root / rel
        for row, name, text in _texts(path):
            found.extend(Location(rel, row, name, span.type) for span in scanner.scan(text))
    return found


def _texts(path: Path) -> Iterator[tuple[int | None, str, str]]:
    """(row, field, text) of every text in the file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet_texts(path)
        return
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return  # binary (a plot): no text to leak
    if suffix == ".json":
        try:
            yield from ((None, name, text) for name, text in meta_strings(json.loads(content), ""))
            return
        except ValueError:
            pass
    for n, line in enumerate(content.splitlines(), start=1):
        if suffix == ".jsonl":
            try:
                yield from ((n, name.lstrip("."), text) for name, text in meta_strings(json.loads(line), ""))
                continue
            except ValueError:
                pass
        yield n, "text", line


def _parquet_texts(path: Path) -> Iterator[tuple[int, str, str]]:
    import pyarrow.parquet as pq

    shard = pq.ParquetFile(path)
    acc = ACC_COLUMNS <= set(shard.schema_arrow.names)
    row = 0
    for batch in shard.iter_batches(batch_size=BATCH_ROWS):
        for values in batch.to_pylist():
            texts = record_texts(ACCRecord.from_row(values)) if acc else _row_texts(values)
            yield from ((row, name, text) for name, text in texts)
            row += 1


def _row_texts(values: dict[str, Any]) -> list[tuple[str, str]]:
    return [(name.lstrip("."), text) for name, text in meta_strings(values, "")]
