"""The row reader: parquet / arrow / jsonl / JSON (plain, .gz, .zst) streamed in batches, origins `shard#row`,
broken rows and shards reported with where and why."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataset_builder.readers import is_binary_dataset_file, is_dataset_file, list_inputs
from dataset_builder.readers import rows as rows_module
from dataset_builder.readers.rows import file_kind, iter_rows

ROWS = [{"id": f"r{i}", "messages": json.dumps([{"role": "user", "content": f"q{i}"}]), "n": i} for i in range(10)]


def test_parquet_rows_stream_in_batches_with_stable_origins(tmp_path, monkeypatch):
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path, row_group_size=4)
    batches = []
    real_batch_rows = rows_module._batch_rows

    def spy(batch, *args):
        batches.append(batch.num_rows)
        return real_batch_rows(batch, *args)

    monkeypatch.setattr(rows_module, "_batch_rows", spy)
    items = list(iter_rows(path, batch_rows=3))
    assert [i.row["id"] for i in items] == [r["id"] for r in ROWS]
    assert [i.origin for i in items] == [f"{path}#{k}" for k in range(10)]
    assert max(batches) <= 3 and sum(batches) == 10  # never the whole file at once


def test_arrow_stream_and_file(tmp_path):
    table = pa.Table.from_pylist(ROWS)
    stream, file = tmp_path / "data-00000-of-00001.arrow", tmp_path / "other.arrow"
    with pa.ipc.new_stream(stream, table.schema) as w:
        w.write_table(table, max_chunksize=4)
    with pa.ipc.new_file(file, table.schema) as w:
        w.write_table(table, max_chunksize=4)
    for path in (stream, file):
        items = list(iter_rows(path))
        assert [i.row["n"] for i in items] == list(range(10)) and items[3].origin == f"{path}#3"


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz"])
def test_json_rows_plain_and_compressed(tmp_path, suffix):
    path = tmp_path / f"runs{suffix}"
    text = json.dumps(ROWS) if ".json." in suffix or suffix == ".json" else "\n".join(map(json.dumps, ROWS)) + "\n\n"
    raw = text.encode()
    if suffix.endswith(".gz"):
        raw = gzip.compress(raw)
    elif suffix.endswith(".zst"):
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, "zstd") as out:
            out.write(raw)
        raw = sink.getvalue().to_pybytes()
    path.write_bytes(raw)
    items = list(iter_rows(path))
    assert [i.row for i in items] == ROWS
    assert items[-1].origin == f"{path}#9"


def test_bad_rows_are_reported_and_the_rest_is_read(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"id": "a"}\n{"id": \n[1, 2]\n{"id": "d"}\n')
    items = list(iter_rows(path))
    assert [(i.origin.rsplit("#")[1], bool(i.row), i.error.split(":")[0]) for i in items] == [
        ("0", True, ""),
        ("1", False, "malformed JSON row"),
        ("2", False, "row is a JSON list, not an object"),
        ("3", True, ""),
    ]


def test_a_shard_that_is_not_parquet_is_one_error(tmp_path):
    path = tmp_path / "train-00000-of-00002.parquet"
    path.write_text('{"id": "I am JSON with the wrong name"}\n')
    (item,) = list(iter_rows(path))
    assert item.row is None and item.origin == str(path) and item.error.startswith("not a parquet file")


def test_a_60mb_cell_is_rejected_without_stopping_the_shard(tmp_path):
    rows = [
        {"id": "small", "messages": "[]"},
        {"id": "huge", "messages": "x" * (60 * 2**20)},
        {"id": "after", "messages": "[]"},
    ]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    items = list(iter_rows(path))
    assert [i.row["id"] if i.row else None for i in items] == ["small", None, "after"]
    assert items[1].origin == f"{path}#1" and "60 MiB, over the 48 MiB row limit" in items[1].error


def test_file_kinds_and_listing(tmp_path):
    assert file_kind("a/train-0.parquet") == ("parquet", "")
    assert file_kind("x.JSONL.ZST") == ("jsonl", "zstd")
    assert file_kind("x.json.gz") == ("json", "gzip")
    assert file_kind("README.md") == ("", "")
    assert is_binary_dataset_file("a.parquet") and is_binary_dataset_file("a.jsonl.gz")
    assert not is_binary_dataset_file("a.jsonl") and is_dataset_file("a.jsonl")
    (tmp_path / "d" / ".hidden").mkdir(parents=True)
    (tmp_path / "d" / "b.jsonl").write_text("{}")
    (tmp_path / "d" / "a.parquet").write_text("")
    (tmp_path / "d" / ".hidden" / "c.jsonl").write_text("{}")
    assert list_inputs([tmp_path / "d", tmp_path / "d" / "b.jsonl"]) == [
        str(tmp_path / "d" / "a.parquet"),
        str(tmp_path / "d" / "b.jsonl"),
    ]
    with pytest.raises(FileNotFoundError):
        list_inputs([tmp_path / "missing"])
