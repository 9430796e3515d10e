"""Stage `read`: this task's share of the input files -> compiled trajectories written by filler bucket, rejects, and
candidates for the per-domain filler reservoir."""

from __future__ import annotations

import hashlib
import heapq
import json
import pickle
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from dataset_builder.assemble import Compiled, carries_content, count_pieces, filler_group, question_key
from dataset_builder.context import document_key
from dataset_builder.pipeline.layout import WorkLayout, write_atomic, write_json, write_lines
from dataset_builder.pipeline.memory import freeze_long_lived, work_done
from dataset_builder.pipeline.settings import CompileSettings
from dataset_builder.schema import Reject

FLUSH_BYTES = 128 * 2**20  # evidence buffered in a task before it is written out as one part per bucket


def bucket_of(item: Compiled, buckets: int) -> int:
    """Same repository / database, or (no group) same question -> same bucket: near filler and duplicates meet."""
    key = filler_group(item) or f"q:{question_key(item.traj.question)}"
    return int(hashlib.sha1(f"{item.traj.domain}|{key}".encode()).hexdigest()[:12], 16) % buckets


def reservoir_rank(seed: int, text: str) -> str:
    return hashlib.sha1(f"{seed}|{text}".encode()).hexdigest()


@dataclass(order=True)
class ReservoirEntry:
    rank: str
    kind: str
    title: str
    text: str
    question: str
    group: str
    tokens: int = 0  # of the rendered document at the placeholder index (context.py)


class Reservoir:
    """Bottom-k by a seeded hash of the text, under a character cap: the same set whatever way the corpus is split
    (each task keeps its own bottom-k; merging bottom-ks with the same caps gives the global one)."""

    def __init__(self, max_pieces: int, max_chars: int):
        self.max_pieces, self.max_chars = max_pieces, max_chars
        self._heap: list[tuple[str, str]] = []  # (negated-order key, text): a max-heap on rank
        self._entries: dict[str, ReservoirEntry] = {}
        self._chars = 0
        self._cut = "g"  # every rank popped so far is >= this (hex ranks are < "g"): later ones at or above it are out

    def add(self, entry: ReservoirEntry) -> None:
        if entry.rank >= self._cut:
            return
        old = self._entries.get(entry.text)
        if old is not None:
            if entry < old:  # keep one entry per text, chosen independently of arrival order
                self._entries[entry.text] = entry
            return
        self._entries[entry.text] = entry
        self._chars += len(entry.text)
        heapq.heappush(self._heap, (_desc(entry.rank), entry.text))
        while self._heap and (len(self._entries) > self.max_pieces or self._chars > self.max_chars):
            _, text = heapq.heappop(self._heap)
            popped = self._entries.pop(text)
            self._chars -= len(popped.text)
            self._cut = min(self._cut, popped.rank)

    def entries(self) -> list[ReservoirEntry]:
        return sorted(self._entries.values())


def _desc(rank: str) -> str:
    return "".join("0123456789abcdef"[15 - int(c, 16)] for c in rank)


class ReadExtract(PipelineStep):
    name = "read + extract"
    type = "ACC"

    def __init__(self, settings: CompileSettings, files: list[tuple[str, str]], out: str, progress: bool = True):
        super().__init__()
        self.settings, self.files, self.out, self.progress = settings, files, out, progress

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from tqdm.auto import tqdm

        from dataset_builder.compile import UNKNOWN_DOMAIN, read_and_extract
        from dataset_builder.tokens import token_counter

        layout, s = WorkLayout(Path(self.out)), self.settings
        counter = token_counter(s.tokenizer)
        freeze_long_lived()
        for stale in layout.work.glob(f"evidence/*/*/{rank:05d}-*.parquet"):  # a killed earlier try of this task
            stale.unlink()
        buffers: dict[tuple[str, int], list[tuple[int, int, bytes]]] = {}
        buffered, part = 0, 0
        reservoirs = {d: Reservoir(s.pool_pieces, s.pool_chars) for d in s.domains}
        rejects: list[str] = []
        n_in: Counter = Counter()
        indexed = list(enumerate(self.files))[rank::world_size]
        for file_index, (path, base) in tqdm(indexed, desc=f"read [{rank}]", unit="file", disable=not self.progress):
            with self.track_time():
                items = read_and_extract(path, base, s.fmt, s.domains, s.options)
                count_pieces([i for i in items if not isinstance(i, Reject)], counter)
            file_bytes = 0
            for item_index, item in enumerate(items):
                if isinstance(item, Reject):
                    rejects.append(reject_line(item, (file_index, item_index)))
                    n_in[item.domain or UNKNOWN_DOMAIN] += 1
                    self.stat_update("rejected")
                    continue
                domain = item.traj.domain
                n_in[domain] += 1
                self.stat_update("trajectories")
                bucket = bucket_of(item, s.buckets)
                payload = pickle.dumps(item, protocol=5)
                buffers.setdefault((domain, bucket), []).append((file_index, item_index, payload))
                buffered += len(payload)
                file_bytes += len(payload)
                q, group = question_key(item.traj.question), filler_group(item) or ""
                for piece in (*item.evidence.gold, *item.evidence.distractors):
                    if carries_content(piece):
                        entry = ReservoirEntry(
                            reservoir_rank(s.seed, piece.text), piece.kind, piece.title, piece.text, q, group,
                            item.document_tokens[document_key(piece)],
                        )  # fmt: skip
                        reservoirs[domain].add(entry)
            if buffered > FLUSH_BYTES:
                self._flush(layout, buffers, rank, part)
                buffers, buffered, part = {}, 0, part + 1
            del items
            work_done(max(file_bytes, _file_size(path)))
        self._flush(layout, buffers, rank, part)
        for domain, reservoir in reservoirs.items():
            write_candidates(layout.candidates(domain) / f"{rank:05d}.parquet", reservoir.entries())
        write_lines(layout.rejects("read", f"{rank:05d}"), rejects)
        write_json(layout.counts("read", f"{rank:05d}"), {"n_in": dict(n_in)})
        return data

    def _flush(self, layout: WorkLayout, buffers, rank: int, part: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for (domain, bucket), rows in sorted(buffers.items()):
            columns = {"file_index": [f for f, _, _ in rows], "item_index": [i for _, i, _ in rows]}
            table = pa.table({**columns, "item": [p for _, _, p in rows]})
            path = layout.evidence(domain, bucket) / f"{rank:05d}-{part:05d}.parquet"
            write_atomic(path, lambda p, t=table: pq.write_table(t, p, compression="zstd"))


def _file_size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def reject_line(reject: Reject, order: tuple[int, int]) -> str:
    """A reject as a JSON line with its input position (file, item): the final rejects.jsonl is in input order."""
    return json.dumps({**asdict(reject), "order": list(order)}, ensure_ascii=False, sort_keys=True)


CANDIDATE_COLUMNS = ("rank", "kind", "title", "text", "question", "group", "tokens")


def write_candidates(path: Path, entries: list[ReservoirEntry]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: [getattr(e, c) for e in entries] for c in CANDIDATE_COLUMNS}, schema=candidate_schema())
    write_atomic(path, lambda p: pq.write_table(table, p, compression="zstd"))


def candidate_schema():
    import pyarrow as pa

    strings = [(c, pa.string()) for c in CANDIDATE_COLUMNS[:6]]
    return pa.schema([*strings, ("tokens", pa.int64())])


def read_candidates(path: Path) -> list[ReservoirEntry]:
    import pyarrow.parquet as pq

    table = pq.read_table(path, schema=candidate_schema())
    return [ReservoirEntry(**row) for row in table.to_pylist()]
