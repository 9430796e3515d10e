"""Stage `finalize`: the assembled buckets -> the published dataset folder (shards in bucket order, rejects.jsonl,
stats.json, length plots, card), streaming: no more than one row group of records in memory."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from dataset_builder.pipeline.layout import WorkLayout
from dataset_builder.pipeline.settings import CompileSettings
from dataset_builder.schema import DOMAINS

UNKNOWN_DOMAIN = "unknown"
WORK_DATA = ("evidence", "candidates", "pool", "records", "secrets")  # removed once the dataset is written


@dataclass
class DomainTally:
    n_in: int = 0
    n_rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    n_tokens: list[int] = field(default_factory=list)
    budgets: list[int] = field(default_factory=list)
    gold_fraction: list[float] = field(default_factory=list)
    row_tokens: list[int] = field(default_factory=list)
    splits: dict[str, dict] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)

    def add_records(self, batch) -> None:
        self.n_tokens.extend(batch.column("n_tokens").to_pylist())
        self.budgets.extend(batch.column("budget").to_pylist())
        for text in batch.column("meta").to_pylist():
            meta = json.loads(text or "{}")
            self.gold_fraction.append(meta.get("gold_fraction", 0))
            self.row_tokens.append(meta.get("row_tokens", 0))

    @property
    def n_records(self) -> int:
        return len(self.n_tokens)


class Finalize(PipelineStep):
    name = "write dataset"
    type = "ACC"

    def __init__(
        self, settings: CompileSettings, out: str, keep_work: bool = False, license: str = "other", plots: bool = True
    ):
        super().__init__()
        self.settings, self.out, self.keep_work, self.license, self.plots = settings, out, keep_work, license, plots

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        write_output(Path(self.out), self.settings.to_stats(), self.license, plots=self.plots)
        if not self.keep_work:
            for name in WORK_DATA:
                shutil.rmtree(WorkLayout(Path(self.out)).work / name, ignore_errors=True)
        return data


def write_output(
    out: Path, settings: dict, license: str, plots: bool = True, secrets_summary: dict | None = None
) -> dict:
    """Write the dataset folder from the work folder's records, rejects and counts; returns stats.json's content.
    `plots=False`: no length plots (a compile kept in memory, whose folder nobody looks at). `secrets_summary`: the
    secrets block to record instead of this run's scan reports (`acc ablate`: the source was scanned, it adds no text)."""
    from dataset_builder.budget import length_stats
    from dataset_builder.compile import reason_class
    from dataset_builder.secrets.report import finish_secrets
    from dataset_builder.writer import SPLITS, ShardWriter, batch_row_bytes, plot_lengths, summary, write_card

    layout = WorkLayout(out)
    for old in [*out.glob("data/*/*-*-of-*.parquet"), *out.glob("data/*/.*.tmp"), *out.glob("plots/*_lengths.png")]:
        old.unlink()
    tally: dict[str, DomainTally] = {}
    for counts in sorted(layout.work.glob("counts/read-*.json")):
        for domain, n in json.loads(counts.read_text())["n_in"].items():
            tally.setdefault(domain, DomainTally()).n_in += n
    for domain in DOMAINS:
        for split in SPLITS:
            files = sorted(layout.records(domain, split).glob("*.parquet"))
            if not files:
                continue
            t = tally.setdefault(domain, DomainTally())
            writer, n = ShardWriter(out, domain, split), 0
            for path in files:
                for batch in iter_batches(path):
                    writer.add_batch(batch, batch_row_bytes(batch))
                    t.add_records(batch)
                    n += batch.num_rows
            t.shards.extend(writer.close())
            t.splits[split] = {"n_records": n, "dataset_bytes": writer.arrow_bytes}
    rejects = []
    for path in sorted(layout.work.glob("rejects/*.jsonl")):
        rejects.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    rejects.sort(key=lambda r: (r.get("order", [-1, -1]), r["origin"], r["stage"]))  # input order
    secrets = finish_secrets(
        layout.work / "secrets", rejects, out, settings.get("secrets", "redact"), settings.get("secrets_allowlist")
    )
    with open(out / "rejects.jsonl", "w", encoding="utf-8") as f:
        for rej in rejects:
            rej.pop("order", None)
            f.write(json.dumps(rej, ensure_ascii=False, sort_keys=True) + "\n")
            t = tally.setdefault(rej["domain"] or UNKNOWN_DOMAIN, DomainTally())
            t.n_rejected += 1
            t.reasons[reason_class(rej["reason"])] += 1
    domains = {}
    for dom, t in sorted(tally.items()):
        splits = {
            split: {**info, "num_bytes": sum((out / s).stat().st_size for s in t.shards if f"/{split}-" in s)}
            for split, info in t.splits.items()
        }
        domains[dom] = {
            "n_in": t.n_in,
            "n_records": t.n_records,
            "n_rejected": t.n_rejected,
            "balanced": t.n_in == t.n_records + t.n_rejected,
            "context_tokens": summary(t.n_tokens),
            "budget": summary(t.budgets),
            "gold_fraction": summary(t.gold_fraction),
            "longest_row": max(t.row_tokens, default=0),  # tokens of the longest training row, reasoning excluded
            "reject_reasons": dict(t.reasons.most_common()),
            "shards": t.shards,
            "num_bytes": sum((out / s).stat().st_size for s in t.shards),
            "dataset_bytes": sum(info["dataset_bytes"] for info in t.splits.values()),
            "splits": splits,
        }
        if t.n_records and plots:
            plot_lengths(out / "plots" / f"{dom}_lengths.png", dom, t.budgets, t.n_tokens)
    reasons = Counter()
    for t in tally.values():
        reasons.update(t.reasons)
    stats = {
        "n_in": sum(t.n_in for t in tally.values()),
        "n_records": sum(t.n_records for t in tally.values()),
        "n_rejected": len(rejects),
        "balanced": all(d["balanced"] for d in domains.values()),
        "length": length_stats(
            settings.get("max_length"),
            settings.get("reasoning_reserve"),
            [r for t in tally.values() for r in t.row_tokens],
        ),
        "domains": domains,
        "reject_reasons": dict(reasons.most_common()),
        "pipeline": pipeline_counters(layout),
        "settings": settings,
        "license": license,
        "secrets": secrets if secrets_summary is None else secrets_summary,
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    write_card(out, license=license)
    return stats


def pipeline_counters(layout: WorkLayout) -> dict[str, dict[str, int]]:
    """datatrove's per-task stats of the stages before this one, summed: counters only (timings differ from run to
    run and stay in OUT/.acc-work/logs/<stage>/stats.json, so stats.json stays the same bytes)."""
    out: dict[str, dict[str, int]] = {}
    for stage in ("read", "pool", "assemble"):
        totals: Counter = Counter()
        for path in sorted((layout.logs(stage) / "stats").glob("*.json")):
            for step in json.loads(path.read_text()):
                for name, value in step.get("stats", {}).items():
                    totals[name] += value["total"] if isinstance(value, dict) else value
        if totals:
            out[stage] = {k: int(v) for k, v in sorted(totals.items())}
    return out


def iter_batches(path: Path, batch_rows: int = 64):
    import pyarrow.parquet as pq

    yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
