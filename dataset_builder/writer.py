"""Writing a compiled ACC dataset: parquet shards per domain, rejects, stats, length plots and the dataset card.

    OUT/
      README.md                                  dataset card: `configs:` search / swe / sql / all (default)
      data/<domain>/train-00000-of-0000N.parquet  ACC records, features = schema.features()
      data/<domain>/test-00000-of-0000N.parquet   with `--test-size`: the held-out questions (see `split_of`)
      rejects.jsonl                              one line per input that did not become a record (origin, reason)
      stats.json                                 counts, token statistics, reject reasons, compile settings
      plots/<domain>_lengths.png                 histograms of context tokens and budgets

`load_dataset(OUT, "swe")` (or "all") reads it locally, and the same after `acc push` from the Hub. Output is
deterministic: the same records give byte-identical files (no timestamps; rows in input order; pyarrow writes
the same bytes for the same table). Shards and plots this writer made earlier in OUT are replaced, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path
from typing import Any

from dataset_builder.schema import DOMAINS, ACCRecord, Reject

SPLITS = ("train", "test")
MAX_SHARD_BYTES = 512 * 2**20  # of text per shard (about 128 records of 128k tokens)
ROW_GROUP_BYTES = 64 * 2**20
CARD_TEMPLATE = "dataset_card.md.j2"


def write_dataset(out_dir: str | Path, result, *, license: str = "other") -> dict:
    """Write a dataset from records in memory (a `compile.CompileResult`), through the same steps as a compile:
    they are staged as one bucket of the pipeline's work folder, then `finalize_step.write_output` writes the shards,
    rejects, stats, plots and card. Returns the stats written to stats.json."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataset_builder.pipeline.finalize_step import write_output
    from dataset_builder.pipeline.layout import WorkLayout, write_json, write_lines
    from dataset_builder.pipeline.read_step import reject_line

    out = Path(out_dir)
    layout = WorkLayout(out)
    shutil.rmtree(layout.work, ignore_errors=True)
    test_size, seed = float(result.settings.get("test_size") or 0.0), int(result.settings.get("seed") or 0)
    for domain in DOMAINS:
        for split in SPLITS:
            rows = [r.to_row() for r in result.records if r.domain == domain and split_of(r, test_size, seed) == split]
            if rows:
                path = layout.records(domain, split) / "00000.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), path)
    write_lines(layout.rejects("memory", "00000"), [reject_line(r, (0, i)) for i, r in enumerate(result.rejects)])
    write_json(layout.counts("read", "00000"), {"n_in": {d: c.n_in for d, c in result.counts.items()}})
    stats = write_output(out, result.settings, license)
    shutil.rmtree(layout.work, ignore_errors=True)
    return stats


def arrow_schema():
    """The parquet schema: `schema.features()` as arrow, with the `huggingface` metadata that `datasets` reads back."""
    from dataset_builder.schema import features

    feats = features()
    meta = {"huggingface": json.dumps({"info": {"features": feats.to_dict()}})}
    return feats.arrow_schema.with_metadata(meta)


def split_of(record: ACCRecord, test_size: float, seed: int) -> str:
    """The record's split: "test" for a seeded share `test_size` of each domain's questions, else "train".

    Decided by a hash of the normalized question, so the records of one task (several runs, trials or agents) land
    in the same split, and compiling more trajectories later never moves a question to the other split. Distractor
    filler is drawn across the whole domain before splitting: a test context may hold evidence of train questions
    (as distractors), never its own question's."""
    if test_size <= 0:
        return "train"
    key = "\0".join([str(seed), record.domain, " ".join(record.question.lower().split())])
    draw = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return "test" if draw < test_size else "train"


class ShardWriter:
    """Parquet shards of one domain's split, filled in order and cut by text size (`MAX_SHARD_BYTES`); row groups of
    about `ROW_GROUP_BYTES`. Rows stream through: at most one row group is held in memory.

    ACC records by default, as Python rows (`add`) or arrow batches of the same schema (`add_batch`: the work
    folder's records, never converted to Python); both give the same bytes. Another row type gives `schemas` (the
    arrow schema Python rows are converted with, and the schema written, with the `huggingface` features metadata)
    and `size` (a row's text size, for the cuts)."""

    def __init__(self, out: Path, domain: str, split: str, schemas=None, size=None):
        self.out, self.domain, self.split = out, domain, split
        self.storage, self.schema = schemas or (arrow_schema(), arrow_schema())
        self.size = size or row_bytes
        self.paths: list[Path] = []
        self.arrow_bytes = 0
        self._writer = None
        self._shard_bytes = 0
        self._parts: list = []  # arrow tables of the row group being filled, in order
        self._rows: list[dict] = []  # Python rows after them
        self._rows_bytes = 0

    def add(self, row: dict[str, Any]) -> None:
        size = self.size(row)
        if self._cut_due(size):
            self._flush()
            self._close()
        self._rows.append(row)
        self._rows_bytes += size
        if self._rows_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def add_batch(self, batch, sizes: list[int]) -> None:
        """Rows of an arrow batch in this writer's schema, with their `size`s (`batch_row_bytes` for records)."""
        import pyarrow as pa

        self._stage_rows()
        start = 0
        for i, size in enumerate(sizes):
            if self._cut_due(size, pending=i > start):
                self._parts.append(pa.Table.from_batches([batch.slice(start, i - start)]))
                start = i
                self._flush()
                self._close()
            self._rows_bytes += size
            if self._rows_bytes >= ROW_GROUP_BYTES:
                self._parts.append(pa.Table.from_batches([batch.slice(start, i + 1 - start)]))
                start = i + 1
                self._flush()
        if start < len(sizes):
            self._parts.append(pa.Table.from_batches([batch.slice(start)]))

    def _cut_due(self, size: int, pending: bool = False) -> bool:
        started = pending or self._writer is not None or self._parts or self._rows
        return bool(started) and self._shard_bytes + self._rows_bytes + size > MAX_SHARD_BYTES

    def _stage_rows(self) -> None:
        import pyarrow as pa

        if self._rows:
            table = pa.Table.from_pylist(self._rows, schema=self.storage)
            self._parts.append(table.cast(self.schema) if self.storage is not self.schema else table)
            self._rows = []

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._stage_rows()
        parts = [p for p in self._parts if p.num_rows]
        if not parts:
            self._parts, self._rows_bytes = [], 0
            return
        # One contiguous copy (the empty part forces the copy even for a single part): a slice of a batch counts
        # its bitmaps from the slice's bit offset, so its `nbytes` can be a byte off the same rows built afresh.
        table = pa.concat_tables([*parts, parts[0].slice(0, 0)]).combine_chunks()
        if self._writer is None:
            path = self.out / "data" / self.domain / f".{self.split}-{len(self.paths):05d}.parquet.tmp"
            path.parent.mkdir(parents=True, exist_ok=True)
            self.paths.append(path)
            self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self._writer.write_table(table, row_group_size=table.num_rows)
        self.arrow_bytes += table.nbytes
        self._shard_bytes += self._rows_bytes
        self._parts, self._rows_bytes = [], 0

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer, self._shard_bytes = None, 0

    def close(self) -> list[str]:
        """Finish the last shard and give every shard its final name (`train-00000-of-00003.parquet`)."""
        self._flush()
        self._close()
        final = []
        for k, tmp in enumerate(self.paths):
            rel = f"data/{self.domain}/{self.split}-{k:05d}-of-{len(self.paths):05d}.parquet"
            tmp.replace(self.out / rel)
            final.append(rel)
        return final


def row_bytes(row: dict[str, Any]) -> int:
    text = sum(len(p["text"]) for p in row["pieces"])
    return 2 * len(row["context"]) + text + len(row["answer"]) + len(row["reasoning"]) + 1024


def batch_row_bytes(batch) -> list[int]:
    """`row_bytes` of every row of an arrow batch of records, computed in arrow."""
    import numpy as np
    import pyarrow.compute as pc

    def chars(column) -> np.ndarray:
        return pc.fill_null(pc.utf8_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64)

    pieces = batch.column("pieces")
    text = np.bincount(
        pc.list_parent_indices(pieces).to_numpy(zero_copy_only=False),
        weights=chars(pc.list_flatten(pieces).field("text")),
        minlength=batch.num_rows,
    ).astype(np.int64)
    total = 2 * chars(batch.column("context")) + text + chars(batch.column("answer"))
    return (total + chars(batch.column("reasoning")) + 1024).tolist()


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for rej in rejects:
            f.write(rej.to_json() + "\n")


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "min": min(values),
        "median": round(statistics.median(values)),
        "mean": round(statistics.fmean(values), 1),
        "max": max(values),
        "total": sum(values),
    }


def plot_lengths(path: Path, domain: str, budgets: list[int], n_tokens: list[int]) -> None:
    """Histogram of context tokens and budgets (half-octave bins over 512-128k tokens)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    bins = [2 ** (k / 2) for k in range(18, 36)]  # 512 .. 131072, half-octave bins
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.hist(budgets, bins=bins, alpha=0.5, label="budget")
    ax.hist(n_tokens, bins=bins, alpha=0.7, label="context tokens")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tokens")
    ax.set_ylabel("records")
    ax.set_title(f"{domain}: {len(n_tokens)} records")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def front_matter(stats: dict[str, Any], license: str, pretty_name: str) -> dict[str, Any]:
    """The card's YAML metadata: configs (one per domain with data, plus `all`, the default) and dataset_info."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict

    from dataset_builder.schema import features

    with_data = [d for d in DOMAINS if stats["domains"].get(d, {}).get("n_records")]
    counts = {d: split_counts(stats["domains"][d]) for d in with_data}
    configs, infos = [], DatasetInfosDict()
    for cfg in ["all", *with_data]:
        doms = with_data if cfg == "all" else [cfg]
        folder = "*" if cfg == "all" else cfg
        names = [split for split in SPLITS if any(split in counts[d] for d in doms)]
        config = {
            "config_name": cfg,
            "data_files": [{"split": n, "path": f"data/{folder}/{n}-*.parquet"} for n in names],
        }
        configs.append({**config, "default": True} if cfg == "all" else config)
        splits = SplitDict()
        for n in names:
            num_bytes = sum(counts[d].get(n, {}).get("dataset_bytes", 0) for d in doms)
            num_examples = sum(counts[d].get(n, {}).get("n_records", 0) for d in doms)
            splits.add(SplitInfo(name=n, num_bytes=num_bytes, num_examples=num_examples))
        nbytes = sum(stats["domains"][d].get("dataset_bytes", 0) for d in doms)
        download = sum(stats["domains"][d]["num_bytes"] for d in doms)
        infos[cfg] = DatasetInfo(features=features(), splits=splits, download_size=download, dataset_size=nbytes)
    meta: dict[str, Any] = {}
    if with_data:
        infos.to_dataset_card_data(meta)
    n = stats["n_records"]
    size = "n<1K" if n < 1000 else "1K<n<10K" if n < 10_000 else "10K<n<100K" if n < 100_000 else "100K<n<1M"
    return {
        "pretty_name": pretty_name,
        "license": license,
        "language": ["en"],
        "task_categories": ["question-answering", "text-generation"],
        "tags": ["acc", "agent-context-compilation", "long-context", "agent-trajectories", *with_data],
        "size_categories": [size],
        "configs": configs if with_data else [],
        **meta,
    }


def split_counts(domain_stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    """{split: {n_records, dataset_bytes, ...}} of one domain (a stats.json written before splits: all train)."""
    if domain_stats.get("splits"):
        return domain_stats["splits"]
    n, nbytes = domain_stats.get("n_records", 0), domain_stats.get("dataset_bytes", 0)
    return {"train": {"n_records": n, "dataset_bytes": nbytes}} if n else {}


def write_card(
    out: str | Path, *, repo_id: str | None = None, license: str | None = None, pretty_name: str | None = None
):
    """(Re)write OUT/README.md from OUT/stats.json and the plots; `repo_id` is what the usage example loads."""
    import yaml

    from model_cards import render

    out = Path(out)
    stats = json.loads((out / "stats.json").read_text())
    name = pretty_name or (repo_id.split("/")[-1] if repo_id else out.resolve().name)
    meta = front_matter(stats, license or stats.get("license", "other"), name)
    plots = {d: f"plots/{d}_lengths.png" for d in DOMAINS if (out / "plots" / f"{d}_lengths.png").is_file()}
    card = render(
        CARD_TEMPLATE,
        front_matter=yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000),
        name=name,
        repo_id=repo_id or str(out),
        stats=stats,
        domains=[d for d in (*DOMAINS, "unknown") if d in stats["domains"]],
        configs=[c["config_name"] for c in meta["configs"]],
        splits=sorted({f["split"] for c in meta["configs"] for f in c["data_files"]}),
        plots=plots,
        reasons=list(stats["reject_reasons"].items())[:15],
        settings=stats["settings"],
    )
    (out / "README.md").write_text(card)
    return card
