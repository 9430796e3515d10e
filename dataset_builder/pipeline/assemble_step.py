"""Stage `assemble`: this task's buckets -> ACC records (budget, distractors, shuffle, render), one file per bucket
and split, rows in origin order. Filler comes from the bucket first (same repository / database), then from the
domain's reservoir."""

from __future__ import annotations

import os
import pickle
from collections import Counter
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from dataset_builder.pipeline.layout import WorkLayout, write_json, write_lines
from dataset_builder.pipeline.memory import freeze_long_lived, release_memory
from dataset_builder.pipeline.read_step import reject_line
from dataset_builder.pipeline.settings import CompileSettings
from dataset_builder.schema import ACCRecord, Reject


def load_bucket(folder: Path) -> list:
    """((file index, item index), compiled trajectory) of the bucket, in input order (whatever task wrote them)."""
    import pyarrow.parquet as pq

    rows = []
    for part in sorted(folder.glob("*.parquet")):
        table = pq.read_table(part)
        order = zip(table.column("file_index").to_pylist(), table.column("item_index").to_pylist())
        rows.extend(zip(order, table.column("item").to_pylist()))
    rows.sort(key=lambda r: r[0])
    return [(order, pickle.loads(payload)) for order, payload in rows]


def cap_per_instance(items: list, cap: int) -> tuple[list, list[Reject]]:
    """--max-per-instance: the first `cap` runs (in origin order) of each task instance; the others are rejects.
    All runs of an instance share a bucket (same repository / database / question), so this is exact."""
    if cap <= 0:
        return items, []
    seen: Counter = Counter()
    kept, rejects = [], []
    for order, item in items:
        instance = str(item.traj.meta.get("instance_id") or item.traj.id)
        seen[instance] += 1
        if seen[instance] > cap:
            reason = f"run {seen[instance]} of instance {instance}: over --max-per-instance {cap}"
            rejects.append(
                reject_line(
                    Reject(item.traj.origin, reason, item.traj.source, item.traj.domain, stage="compile"), order
                )
            )
        else:
            kept.append((order, item))
    return kept, rejects


RECORDS_PER_CHUNK = 64  # records held between assembly and the bucket's files


class AssembleBuckets(PipelineStep):
    name = "assemble"
    type = "ACC"

    def __init__(self, settings: CompileSettings, out: str, progress: bool = True):
        super().__init__()
        self.settings, self.out, self.progress = settings, out, progress

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from tqdm.auto import tqdm

        from dataset_builder.pipeline.pool_step import load_pool
        from dataset_builder.tokens import token_counter

        layout, s = WorkLayout(Path(self.out)), self.settings
        counter = token_counter(s.tokenizer)
        pool_tokens: dict[tuple[str, str, str], int] = {}
        reservoir = {d: load_pool(layout.pool(d), pool_tokens) for d in s.domains}
        freeze_long_lived()
        backgrounds: dict = {}  # the reservoir's BM25 postings, built by the first bucket that needs them
        mine = layout.buckets()[rank::world_size]
        for domain, bucket in tqdm(mine, desc=f"assemble [{rank}]", unit="bucket", disable=not self.progress):
            with self.track_time("bucket"):
                self.assemble_bucket(layout, domain, bucket, counter, reservoir, pool_tokens, backgrounds)
            release_memory()  # a bucket is the unit of memory here: hand it back before the next one
        return data

    def assemble_bucket(self, layout, domain, bucket, counter, reservoir, pool_tokens, backgrounds) -> None:
        from dataset_builder.assemble import Assembler
        from dataset_builder.writer import split_of

        s = self.settings
        ordered, capped = cap_per_instance(load_bucket(layout.evidence(domain, bucket)), s.options.max_per_instance)
        items = [item for _, item in ordered]
        assembler = Assembler(
            counter,
            s.budgets,
            s.seed,
            max_length=s.max_length,
            reasoning_reserve=s.reasoning_reserve,
            distractors=s.distractors,
        )
        assembler.contexts.documents.update(pool_tokens)  # the reservoir was counted in the read stage
        assembler.backgrounds = backgrounds  # shared by the task's buckets: the reservoir is indexed once
        rejects: list[str] = capped
        seen_ids: dict[str, str] = {}
        order_of = {item.traj.origin: order for order, item in ordered}
        writer = SplitWriters(layout, domain, bucket)
        report = None
        chunk: list[ACCRecord] = []

        def flush() -> None:  # secrets, then to the bucket's files: at most one chunk of records in memory
            nonlocal report
            dropped: list[Reject] = []
            kept, part = self.scan_secrets(chunk, dropped, assembler.contexts, seen_ids)
            if report is None:
                report = part
            else:
                report.merge(part)
            rejects.extend(reject_line(r, order_of.get(r.origin, (-1, -1))) for r in dropped)
            for rec in kept:
                writer.add(split_of(rec, s.test_size, s.seed), rec)
            chunk.clear()

        outs = assembler.iter_assemble(items, reservoir={domain: reservoir.get(domain, [])})
        for (order, item), out in zip(ordered, outs):
            if isinstance(out, ACCRecord) and out.id in seen_ids:
                reason = f"duplicate trajectory: same source, id and origin as {seen_ids[out.id]}"
                out = Reject(item.traj.origin, reason, item.traj.source, item.traj.domain, stage="compile")
            if isinstance(out, Reject):
                rejects.append(reject_line(out, order))
                self.stat_update("rejected")
            else:
                seen_ids[out.id] = item.traj.origin
                chunk.append(out)
                self.stat_update("records")
                self.stat_update("context_tokens", value=out.n_tokens, unit="record")
                if len(chunk) >= RECORDS_PER_CHUNK:
                    flush()
        flush()
        writer.close()
        if report is not None:
            write_json(layout.work / "secrets" / f"{domain}-{bucket:05d}.json", report.to_json())
            self.stat_update("secrets_found", value=len(report.findings))
        write_lines(layout.rejects("assemble", f"{domain}-{bucket:05d}"), rejects)

    def scan_secrets(self, records, rejects, contexts, origins):
        """Credentials and personal data: redacted, or the record dropped to `rejects` (`secrets/`); returns the kept
        records and the findings' report (merged per bucket, for the finalize stage's stats.json, card, secrets.jsonl).
        `contexts`: the assembler's document counts, which redacted documents join (counted once per bucket)."""
        from dataset_builder.secrets import scan_run

        s = self.settings
        return scan_run(
            records, rejects, policy=s.secrets, counter=contexts.counter, allowlist=s.secrets_allowlist,
            origins=origins, max_length=s.max_length, reasoning_reserve=s.reasoning_reserve, contexts=contexts,
        )  # fmt: skip


class SplitWriters:
    """The bucket's record files, one per split, written a chunk at a time and renamed into place when complete."""

    def __init__(self, layout: WorkLayout, domain: str, bucket: int):
        self.layout, self.domain, self.bucket = layout, domain, bucket
        self._writers: dict = {}
        self._rows: dict[str, list[dict]] = {}

    def add(self, split: str, record: ACCRecord) -> None:
        rows = self._rows.setdefault(split, [])
        rows.append(record.to_row())
        if len(rows) >= RECORDS_PER_CHUNK:
            self._write(split)

    def _write(self, split: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from dataset_builder.writer import arrow_schema

        rows = self._rows.get(split)
        if not rows:
            return
        if split not in self._writers:
            final = self.layout.records(self.domain, split) / f"{self.bucket:05d}.parquet"
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
            self._writers[split] = (pq.ParquetWriter(tmp, arrow_schema(), compression="zstd"), tmp, final)
        self._writers[split][0].write_table(pa.Table.from_pylist(rows, schema=arrow_schema()))
        rows.clear()

    def close(self) -> None:
        for split in ("train", "test"):
            self._write(split)
            if split in self._writers:
                writer, tmp, final = self._writers[split]
                writer.close()
                os.replace(tmp, final)
            else:
                (self.layout.records(self.domain, split) / f"{self.bucket:05d}.parquet").unlink(missing_ok=True)
