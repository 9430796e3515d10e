import hashlib
import json

import pytest
import yaml
from compile_helpers import make_result

from dataset_builder.schema import DOMAINS
from dataset_builder.writer import write_card, write_dataset


def read_front_matter(path):
    text = path.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1]), text


def test_layout_stats_rejects_and_card(tmp_path):
    result = make_result()
    stats = write_dataset(tmp_path, result)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")) == [
        "data/search/train-00000-of-00001.parquet",
        "data/sql/train-00000-of-00001.parquet",
    ]
    assert (tmp_path / "plots/search_lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "plots/sql_lengths.png").is_file() and not (tmp_path / "plots/swe_lengths.png").exists()
    lines = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [r["origin"] for r in lines] == ["broken.jsonl:3", "notes.bin"]
    assert set(lines[0]) == {"origin", "reason", "source", "domain", "stage"}
    assert json.loads((tmp_path / "stats.json").read_text()) == stats
    assert stats["balanced"] and stats["n_in"] == stats["n_records"] + stats["n_rejected"] == 8 + 2
    assert stats["domains"]["search"]["context_tokens"]["max"] <= 4096

    meta, text = read_front_matter(tmp_path / "README.md")
    assert [c["config_name"] for c in meta["configs"]] == ["all", "search", "sql"]  # no swe: it has no data
    assert meta["configs"][0]["default"] is True
    assert meta["configs"][0]["data_files"] == [{"split": "train", "path": "data/*/train-*.parquet"}]
    assert meta["configs"][2]["data_files"] == [{"split": "train", "path": "data/sql/train-*.parquet"}]
    assert meta["license"] and "question-answering" in meta["task_categories"] and "long-context" in meta["tags"]
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert infos["all"]["splits"][0]["num_examples"] == 8 and infos["sql"]["splits"][0]["num_examples"] == 4
    assert "| search | 4 | 0 | 4 |" in text and "| sql | 4 | 1 | 5 |" in text
    assert "malformed JSON line: Expecting value at column N" not in text or "| 1 |" in text
    assert "![search: context tokens and budgets](plots/search_lengths.png)" in text
    assert 'ds = load_dataset("' in text and 'sql_ds = load_dataset("' in text and "acc x" in text


def test_load_dataset_all_configs(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    result = make_result(("search", "swe", "sql"), n=3)
    write_dataset(tmp_path / "ds", result)
    cache = tmp_path / "cache"
    by_domain = {}
    for cfg in ("search", "swe", "sql"):
        ds = load_dataset(str(tmp_path / "ds"), cfg, split="train", cache_dir=str(cache))
        assert len(ds) == 3 and set(ds["domain"]) == {cfg}
        by_domain[cfg] = ds
    both = load_dataset(str(tmp_path / "ds"), split="train", cache_dir=str(cache))  # default config: all
    assert len(both) == 9
    row = by_domain["swe"][0]
    rec = next(r for r in result.records if r.id == row["id"])
    assert row == rec.to_row()  # every column round-trips exactly, pieces and messages included
    from dataset_builder.schema import features

    assert both.features == features()


def test_deterministic_bytes_and_stale_shards_removed(tmp_path):
    def digest(root):
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    write_dataset(tmp_path / "a", make_result())
    write_dataset(tmp_path / "b", make_result())
    da, db = digest(tmp_path / "a"), digest(tmp_path / "b")
    da.pop("README.md"), db.pop("README.md")  # the card names its directory
    assert da == db
    # rewriting with fewer domains removes the old shards and plots of the missing one, and its config
    (tmp_path / "a" / "notes.txt").write_text("mine")
    write_dataset(tmp_path / "a", make_result(("search",)))
    assert not list((tmp_path / "a").glob("data/sql/*.parquet")) and not (tmp_path / "a/plots/sql_lengths.png").exists()
    assert (tmp_path / "a/notes.txt").read_text() == "mine"
    meta, _ = read_front_matter(tmp_path / "a/README.md")
    assert [c["config_name"] for c in meta["configs"]] == ["all", "search"]


def test_card_for_a_repo_id(tmp_path):
    write_dataset(tmp_path, make_result(("sql",)))
    card = write_card(tmp_path, repo_id="my-org/acc-sql")
    assert 'sql_ds = load_dataset("my-org/acc-sql", "sql", split="train")' in card
    assert yaml.safe_load(card.split("---\n")[1])["pretty_name"] == "acc-sql"


def test_shards_split_by_size(tmp_path, monkeypatch):
    from dataset_builder import writer

    monkeypatch.setattr(writer, "MAX_SHARD_BYTES", 1)  # one record per shard
    write_dataset(tmp_path, make_result(("sql",), n=3))
    names = sorted(p.name for p in tmp_path.glob("data/sql/*.parquet"))
    assert names == [f"train-0000{i}-of-00003.parquet" for i in range(3)]


@pytest.mark.parametrize("n", [0])
def test_no_records_gives_a_card_without_configs(tmp_path, n):
    result = make_result(("sql",), n=1)
    result.records.clear()
    result.counts["sql"].n_records = 0
    result.counts["sql"].n_in = result.counts["sql"].n_rejected
    write_dataset(tmp_path, result)
    meta, _ = read_front_matter(tmp_path / "README.md")
    assert meta["configs"] == [] and "dataset_info" not in meta
    assert not list(tmp_path.glob("data/*/*.parquet"))


def test_card_is_what_huggingface_hub_and_datasets_parse(tmp_path, monkeypatch):
    """The card's front matter, read back by huggingface_hub and datasets, describes exactly the parquet on disk:
    every config's data_files globs match its shards (several per domain here), `all` is their union and the default,
    and dataset_info counts the rows the shards hold."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import pyarrow.parquet as pq
    from datasets import get_dataset_config_names
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    from dataset_builder import writer

    monkeypatch.setattr(writer, "MAX_SHARD_BYTES", 20_000)  # several shards per domain
    write_dataset(tmp_path, make_result(("search", "swe", "sql"), n=3))
    shards = {
        d: sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob(f"data/{d}/*.parquet")) for d in DOMAINS
    }
    assert all(len(files) > 1 for files in shards.values()), shards

    card = DatasetCard.load(tmp_path / "README.md")
    meta, _ = read_front_matter(tmp_path / "README.md")
    assert DatasetCardData(**meta).to_dict() == meta == card.data.to_dict()  # round-trips unchanged
    configs = {c["config_name"]: c for c in card.data.configs}
    assert list(configs) == ["all", *DOMAINS] and configs["all"].get("default") is True
    for name, config in configs.items():
        matched = sorted(
            p.relative_to(tmp_path).as_posix() for f in config["data_files"] for p in tmp_path.glob(f["path"])
        )
        assert [f["split"] for f in config["data_files"]] == ["train"]
        assert matched == sorted(sum(shards.values(), []) if name == "all" else shards[name])
        rows = sum(pq.read_metadata(tmp_path / path).num_rows for path in matched)
        infos = DatasetInfosDict.from_dataset_card_data(card.data)[name]
        assert infos.splits["train"].num_examples == rows == (9 if name == "all" else 3)

    parsed = MetadataConfigs.from_dataset_card_data(card.data)
    assert list(parsed) == ["all", *DOMAINS] and parsed.get_default_config_name() == "all"
    assert get_dataset_config_names(str(tmp_path)) == ["all", *DOMAINS]
    assert card.data.license == "other" and card.data.size_categories == ["n<1K"]


@pytest.mark.parametrize("shard_bytes,group_bytes", [(10**9, 10**9), (30_000, 10_000), (1, 1), (10**9, 5_000)])
def test_batches_and_python_rows_write_the_same_bytes(tmp_path, monkeypatch, shard_bytes, group_bytes):
    """Finalize streams the work folder's arrow batches; the cuts (shards, row groups) and bytes equal `add`'s."""
    import pyarrow as pa

    from dataset_builder import writer

    monkeypatch.setattr(writer, "MAX_SHARD_BYTES", shard_bytes)
    monkeypatch.setattr(writer, "ROW_GROUP_BYTES", group_bytes)
    rows = [r.to_row() for r in make_result(("search", "sql", "swe"), n=4).records]
    table = pa.Table.from_pylist(rows, schema=writer.arrow_schema())
    assert writer.batch_row_bytes(table.to_batches()[0]) == [writer.row_bytes(r) for r in rows]

    def files(out):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("data/all/*.parquet"))}

    by_row = writer.ShardWriter(tmp_path / "rows", "all", "train")
    for row in rows:
        by_row.add(row)
    by_batch = writer.ShardWriter(tmp_path / "batches", "all", "train")
    for k in range(0, len(rows), 5):  # batches that do not line up with the cuts
        batch = table.slice(k, 5).to_batches()[0]
        by_batch.add_batch(batch, writer.batch_row_bytes(batch))
    assert by_row.close() == by_batch.close()
    assert by_row.arrow_bytes == by_batch.arrow_bytes
    assert files(tmp_path / "rows") == files(tmp_path / "batches")
    assert len(files(tmp_path / "rows")) == (1 if shard_bytes > 10**6 else len(files(tmp_path / "rows")))
    if shard_bytes == 1:
        assert len(files(tmp_path / "rows")) == len(rows)
