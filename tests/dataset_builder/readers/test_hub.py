"""hf://datasets inputs through the real code path, with only the network edge (the Hub filesystem) replaced by a
local folder laid out like Hub dataset repositories: datasets/ORG/NAME[@REV]/{README.md, data/*.parquet}."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem

from dataset_builder.adapters import read_file
from dataset_builder.readers import hub, list_inputs
from dataset_builder.readers.hub import HubError, parse_hub_url, split_of_file
from dataset_builder.schema import Reject

CARD = """---
license: cc-by-4.0
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test-*
- config_name: small
  data_files: small/*.jsonl
---
# a dataset
"""


def write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


@pytest.fixture
def hub_root(tmp_path, monkeypatch):
    root = tmp_path / "hub"
    repo = root / "datasets" / "org" / "runs"
    write_parquet(repo / "data" / "train-00000-of-00002.parquet", [{"id": "a"}, {"id": "b"}])
    write_parquet(repo / "data" / "train-00001-of-00002.parquet", [{"id": "c"}])
    write_parquet(repo / "data" / "test-00000-of-00001.parquet", [{"id": "t"}])
    (repo / "small").mkdir()
    (repo / "small" / "s.jsonl").write_text('{"id": "s"}\n')
    (repo / "README.md").write_text(CARD)
    (repo / ".gitattributes").write_text("*.parquet filter=lfs\n")
    plain = root / "datasets" / "org" / "plain@v1.0"  # no configs in the card; a revision
    write_parquet(plain / "train-00000-of-00001.parquet", [{"id": "p"}])
    write_parquet(plain / "validation-00000-of-00001.parquet", [{"id": "v"}])
    calls = []

    def fake_hub():  # the network edge: HfFileSystem paths datasets/ORG/NAME[@REV]/... served from the folder
        calls.append(1)
        return DirFileSystem(path=str(root), fs=LocalFileSystem())

    monkeypatch.setattr(hub, "hub_filesystem", fake_hub)
    return root, calls


def test_parse_hub_urls():
    ref = parse_hub_url("hf://datasets/nebius/SWE-agent-trajectories@refs%2Fconvert%2Fparquet/data?split=train")
    assert (ref.repo_id, ref.revision, ref.path, ref.split) == (
        "nebius/SWE-agent-trajectories",
        "refs%2Fconvert%2Fparquet",
        "data",
        "train",
    )
    assert parse_hub_url("hf://datasets/a/b@main?config=x").root == "datasets/a/b@main"
    for bad in ("hf://datasets/onlyorg", "hf://datasets/a/b?splits=train", "hf://models/a/b"):
        with pytest.raises(HubError):
            parse_hub_url(bad)
    assert split_of_file("data/train-00000-of-00002.parquet") == "train"
    assert split_of_file("test/0000.parquet") == "test" and split_of_file("data/x.parquet") == ""


def test_card_configs_and_splits_select_the_files(hub_root):
    _, calls = hub_root
    base = "hf://datasets/org/runs"
    assert list_inputs([base + "?split=train"]) == [
        f"{base}/data/train-00000-of-00002.parquet",
        f"{base}/data/train-00001-of-00002.parquet",
    ]
    assert list_inputs([base]) == [
        f"{base}/data/train-00000-of-00002.parquet",
        f"{base}/data/train-00001-of-00002.parquet",
        f"{base}/data/test-00000-of-00001.parquet",
    ]
    assert list_inputs([base + "?config=small"]) == [f"{base}/small/s.jsonl"]
    assert calls  # the listing went through the Hub filesystem
    with pytest.raises(HubError, match="no config 'nope'"):
        list_inputs([base + "?config=nope"])
    with pytest.raises(HubError, match="no split 'dev'"):
        list_inputs([base + "?split=dev"])
    with pytest.raises(HubError, match="not found"):
        list_inputs(["hf://datasets/org/missing"])


def test_no_configs_uses_file_names_and_revisions(hub_root):
    base = "hf://datasets/org/plain@v1.0"
    assert list_inputs([base]) == [f"{base}/train-00000-of-00001.parquet", f"{base}/validation-00000-of-00001.parquet"]
    assert list_inputs([base + "?split=validation"]) == [f"{base}/validation-00000-of-00001.parquet"]


def test_hub_files_are_read_row_by_row_with_hub_origins(hub_root):
    (url, _) = list_inputs(["hf://datasets/org/runs?split=train"])
    items = list(read_file(url))  # rows without turns: each a reject naming its shard and row
    assert [i.origin for i in items] == [f"{url}#0", f"{url}#1"]
    assert all(isinstance(i, Reject) and "no turns" in i.reason for i in items)
    assert json.dumps([i.origin for i in items]).count("hf://datasets/org/runs/data/") == 2
