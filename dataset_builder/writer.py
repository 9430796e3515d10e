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
from collections import Counter
from pathlib import Path
from typing import Any

from dataset_builder.schema import DOMAINS, ACCRecord, Reject

SPLITS = ("train", "test")
MAX_SHARD_BYTES = 512 * 2**20  # of text per shard (about 128 records of 128k tokens)
ROW_GROUP_BYTES = 64 * 2**20
CARD_TEMPLATE = "dataset_card.md.j2"


def write_dataset(out_dir: str | Path, result, *, license: str = "other", pretty_name: str | None = None) -> dict:
    """Write everything for a `compile.CompileResult`; returns the stats written to stats.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("data/*/*-*-of-*.parquet"), *out.glob("plots/*_lengths.png")]:
        old.unlink()
    test_size, seed = float(result.settings.get("test_size") or 0.0), int(result.settings.get("seed") or 0)
    by_domain = {d: [r for r in result.records if r.domain == d] for d in DOMAINS}
    parts = {d: split_records(recs, test_size, seed) for d, recs in by_domain.items() if recs}
    shards = {d: {split: write_shards(out, d, recs, split) for split, recs in p.items()} for d, p in parts.items()}
    write_rejects(out / "rejects.jsonl", result.rejects)
    stats = compute_stats(result, {d: [f for paths, _ in w.values() for f in paths] for d, w in shards.items()}, out)
    for d, written in shards.items():
        stats["domains"][d]["dataset_bytes"] = sum(nbytes for _, nbytes in written.values())
        stats["domains"][d]["splits"] = {
            split: {
                "n_records": len(parts[d][split]),
                "dataset_bytes": nbytes,
                "num_bytes": sum((out / f).stat().st_size for f in paths),
            }
            for split, (paths, nbytes) in written.items()
        }
    stats["license"] = license
    (out / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    for d, recs in by_domain.items():
        if recs:
            plot_lengths(out / "plots" / f"{d}_lengths.png", d, recs)
    write_card(out, license=license, pretty_name=pretty_name)
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


def split_records(records: list[ACCRecord], test_size: float, seed: int) -> dict[str, list[ACCRecord]]:
    """The non-empty splits of one domain's records, each in input order."""
    parts: dict[str, list[ACCRecord]] = {split: [] for split in SPLITS}
    for r in records:
        parts[split_of(r, test_size, seed)].append(r)
    return {split: recs for split, recs in parts.items() if recs}


def write_shards(out: Path, domain: str, records: list[ACCRecord], split: str = "train") -> tuple[list[str], int]:
    """Parquet shards of one domain's split, by text size; returns their paths relative to `out` and the arrow size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sizes = [_row_bytes(r) for r in records]
    groups: list[list[int]] = [[]]
    total = 0
    for i, size in enumerate(sizes):
        if groups[-1] and total + size > MAX_SHARD_BYTES:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += size
    schema = arrow_schema()
    paths, nbytes = [], 0
    for k, idx in enumerate(groups):
        rel = f"data/{domain}/{split}-{k:05d}-of-{len(groups):05d}.parquet"
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([records[i].to_row() for i in idx], schema=schema)
        nbytes += table.nbytes
        avg = max(1, sum(sizes[i] for i in idx) // len(idx))
        pq.write_table(table, path, compression="zstd", row_group_size=max(1, min(1000, ROW_GROUP_BYTES // avg)))
        paths.append(rel)
    return paths, nbytes


def _row_bytes(r: ACCRecord) -> int:
    return 2 * len(r.context) + sum(len(p.text) for p in r.pieces) + len(r.answer) + len(r.reasoning) + 1024


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for rej in rejects:
            f.write(rej.to_json() + "\n")


def _summary(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "min": min(values),
        "median": round(statistics.median(values)),
        "mean": round(statistics.fmean(values), 1),
        "max": max(values),
        "total": sum(values),
    }


def compute_stats(result, shards: dict[str, list[str]], out: Path) -> dict[str, Any]:
    from dataset_builder.budget import length_stats

    domains: dict[str, Any] = {}
    for dom, c in result.counts.items():
        recs = [r for r in result.records if r.domain == dom]
        domains[dom] = {
            "n_in": c.n_in,
            "n_records": c.n_records,
            "n_rejected": c.n_rejected,
            "balanced": c.balanced,
            "context_tokens": _summary([r.n_tokens for r in recs]),
            "budget": _summary([r.budget for r in recs]),
            "gold_fraction": _summary([json.loads(r.meta).get("gold_fraction", 0) for r in recs]),
            "reject_reasons": dict(c.reasons.most_common()),
            "shards": shards.get(dom, []),
            "num_bytes": sum((out / s).stat().st_size for s in shards.get(dom, [])),
        }
    reasons = Counter()
    for c in result.counts.values():
        reasons.update(c.reasons)
    return {
        "n_in": sum(c.n_in for c in result.counts.values()),
        "n_records": len(result.records),
        "n_rejected": len(result.rejects),
        "balanced": result.balanced,
        "domains": domains,
        "reject_reasons": dict(reasons.most_common()),
        "settings": result.settings,
        "length": length_stats(
            result.settings.get("max_length"),
            result.settings.get("reasoning_reserve"),
            [json.loads(r.meta).get("row_tokens", 0) for r in result.records],
        ),
    }


def plot_lengths(path: Path, domain: str, records: list[ACCRecord]) -> None:
    """Histogram of context tokens and budgets (half-octave bins over 512-128k tokens)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    bins = [2 ** (k / 2) for k in range(18, 36)]  # 512 .. 131072, half-octave bins
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.hist([r.budget for r in records], bins=bins, alpha=0.5, label="budget")
    ax.hist([r.n_tokens for r in records], bins=bins, alpha=0.7, label="context tokens")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tokens")
    ax.set_ylabel("records")
    ax.set_title(f"{domain}: {len(records)} records")
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
