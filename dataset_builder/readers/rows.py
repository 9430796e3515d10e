"""Rows of a dataset file, streamed in batches: parquet, arrow, jsonl and JSON arrays (plain, .gz or .zst).

    for item in iter_rows("data/train-00000-of-00004.parquet"):
        item.origin   # "data/train-00000-of-00004.parquet#17": the shard and the row's index in it (from 0)
        item.row      # the row as a dict, or None when it could not be read
        item.error    # why not ("" for a good row)

Parquet is read with `ParquetFile.iter_batches` (one batch of rows in memory at a time), arrow IPC files and
streams batch by batch, jsonl line by line; a JSON array is parsed whole (it cannot be streamed: up to
MAX_JSON_BYTES; write larger corpora as jsonl or parquet). A row larger than MAX_ROW_BYTES is reported, not
decoded; a file that is not what its name says is one item with the error; the other rows of a shard are always read.
Files are local paths or hf:// URLs (read in ranges through the Hub filesystem).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

BATCH_ROWS = 256
MAX_ROW_BYTES = 48 * 2**20  # a trajectory row this large is a broken row (a whole log in a cell), not a run
MAX_JSON_BYTES = 512 * 2**20
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
KINDS = {".parquet": "parquet", ".arrow": "arrow", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


@dataclass
class RowItem:
    origin: str  # "<shard>#<row>" (or the shard alone for an error about the whole file)
    row: dict[str, Any] | None
    error: str = ""


def file_kind(path: str) -> tuple[str, str]:
    """(kind, compression) from a file name: ("parquet" | "arrow" | "jsonl" | "json" | "", "" | "gzip" | "zstd")."""
    name = str(path).lower().rsplit("/", 1)[-1]
    compression = ""
    for suffix, codec in COMPRESSIONS.items():
        if name.endswith(suffix):
            name, compression = name[: -len(suffix)], codec
            break
    kind = next((k for suffix, k in KINDS.items() if name.endswith(suffix)), "")
    return kind, compression


def open_binary(path: str) -> BinaryIO:
    """A local file or an hf:// file (ranged reads through the Hub filesystem), opened for reading bytes."""
    from dataset_builder.readers.hub import hub_filesystem, is_hub_url

    if is_hub_url(path):
        return hub_filesystem().open(str(path)[len("hf://") :], "rb")
    return open(path, "rb")


def iter_rows(path: str | Path, batch_rows: int = BATCH_ROWS, max_row_bytes: int = MAX_ROW_BYTES) -> Iterator[RowItem]:
    path = str(path)
    kind, compression = file_kind(path)
    try:
        f = open_binary(path)
    except (OSError, ValueError) as err:
        yield RowItem(path, None, f"cannot open: {err}")
        return
    with f:
        if kind == "parquet" and not compression:
            yield from _parquet_rows(f, path, batch_rows, max_row_bytes)
        elif kind == "arrow" and not compression:
            yield from _arrow_rows(f, path, max_row_bytes)
        elif kind in ("jsonl", "json"):
            stream = _decompressed(f, compression) if compression else f
            if kind == "jsonl":
                yield from _jsonl_rows(stream, path, max_row_bytes)
            else:
                yield from _json_array_rows(stream, path, max_row_bytes)
        else:
            yield RowItem(path, None, f"not a dataset file the row reader reads ({kind or 'unknown'} {compression})")


def _decompressed(f: BinaryIO, codec: str) -> BinaryIO:
    import pyarrow as pa

    return io.BufferedReader(pa.CompressedInputStream(pa.PythonFile(f, mode="r"), codec), buffer_size=1 << 20)


def _parquet_rows(f: BinaryIO, path: str, batch_rows: int, max_row_bytes: int) -> Iterator[RowItem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f)
    except (pa.ArrowException, OSError) as err:
        yield RowItem(path, None, f"not a parquet file: {err}")
        return
    index = 0
    try:
        for batch in pf.iter_batches(batch_size=batch_rows):
            yield from _batch_rows(batch, path, index, max_row_bytes)
            index += batch.num_rows
    except (pa.ArrowException, OSError) as err:  # a corrupt row group: the rows before it were read
        yield RowItem(f"{path}#{index}", None, f"unreadable parquet data from row {index} on: {err}")


def _arrow_rows(f: BinaryIO, path: str, max_row_bytes: int) -> Iterator[RowItem]:
    import pyarrow as pa

    data = pa.PythonFile(f, mode="r")
    try:
        reader = pa.ipc.open_stream(data)  # `datasets` writes arrow streams
        batches = iter(reader)
    except pa.ArrowException:
        try:
            f.seek(0)
            file_reader = pa.ipc.open_file(pa.PythonFile(f, mode="r"))
        except (pa.ArrowException, OSError) as err:
            yield RowItem(path, None, f"not an arrow file: {err}")
            return
        batches = (file_reader.get_batch(i) for i in range(file_reader.num_record_batches))
    index = 0
    try:
        for batch in batches:
            yield from _batch_rows(batch, path, index, max_row_bytes)
            index += batch.num_rows
    except (pa.ArrowException, OSError) as err:
        yield RowItem(f"{path}#{index}", None, f"unreadable arrow data from row {index} on: {err}")


def _batch_rows(batch, path: str, start: int, max_row_bytes: int) -> Iterator[RowItem]:
    sizes = [batch.slice(i, 1).nbytes for i in range(batch.num_rows)] if batch.nbytes > max_row_bytes else None
    if sizes is None or max(sizes, default=0) <= max_row_bytes:
        for i, row in enumerate(batch.to_pylist()):
            yield RowItem(f"{path}#{start + i}", row)
        return
    for i, size in enumerate(sizes):
        if size > max_row_bytes:
            yield RowItem(f"{path}#{start + i}", None, _too_large(size, max_row_bytes))
        else:
            yield RowItem(f"{path}#{start + i}", batch.slice(i, 1).to_pylist()[0])


def _too_large(size: int, limit: int) -> str:
    return f"row of {size / 2**20:.0f} MiB, over the {limit // 2**20} MiB row limit (a broken or runaway cell)"


def _jsonl_rows(stream: BinaryIO, path: str, max_row_bytes: int) -> Iterator[RowItem]:
    index = 0
    try:
        for line in stream:
            if not line.strip():
                continue
            origin = f"{path}#{index}"
            index += 1
            if len(line) > max_row_bytes:
                yield RowItem(origin, None, _too_large(len(line), max_row_bytes))
                continue
            yield _json_row(line, origin)
    except (OSError, EOFError) as err:  # truncated or corrupt compressed data
        yield RowItem(f"{path}#{index}", None, f"unreadable data from row {index} on: {err}")


def _json_row(raw: bytes | str, origin: str) -> RowItem:
    try:
        row = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        return RowItem(origin, None, f"malformed JSON row: {err}")
    if not isinstance(row, dict):
        return RowItem(origin, None, f"row is a JSON {type(row).__name__}, not an object")
    return RowItem(origin, row)


def _json_array_rows(stream: BinaryIO, path: str, max_row_bytes: int) -> Iterator[RowItem]:
    try:
        raw = stream.read(MAX_JSON_BYTES + 1)
    except (OSError, EOFError) as err:
        yield RowItem(path, None, f"unreadable data: {err}")
        return
    if len(raw) > MAX_JSON_BYTES:
        yield RowItem(path, None, f"JSON document over {MAX_JSON_BYTES // 2**20} MiB: write it as jsonl or parquet")
        return
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        yield RowItem(path, None, f"invalid JSON: {err}")
        return
    rows = doc if isinstance(doc, list) else [doc]
    for i, row in enumerate(rows):
        origin = f"{path}#{i}"
        if not isinstance(row, dict):
            yield RowItem(origin, None, f"row is a JSON {type(row).__name__}, not an object")
        elif len(raw) > max_row_bytes and len(json.dumps(row)) > max_row_bytes:
            yield RowItem(origin, None, _too_large(len(json.dumps(row)), max_row_bytes))
        else:
            yield RowItem(origin, row)
