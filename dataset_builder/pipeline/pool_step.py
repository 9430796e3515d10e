"""Stage `pool`: the read tasks' reservoir candidates -> one filler reservoir per domain (token counts come along:
they were counted in the read stage)."""

from __future__ import annotations

from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from dataset_builder.pipeline.layout import WorkLayout, write_atomic
from dataset_builder.pipeline.memory import release_memory
from dataset_builder.pipeline.read_step import Reservoir, read_candidates
from dataset_builder.pipeline.settings import CompileSettings


class MergePool(PipelineStep):
    name = "filler reservoir"
    type = "ACC"

    def __init__(self, settings: CompileSettings, out: str):
        super().__init__()
        self.settings, self.out = settings, out

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from dataset_builder.pipeline.read_step import CANDIDATE_COLUMNS

        layout, s = WorkLayout(Path(self.out)), self.settings
        for domain in s.domains:
            reservoir = Reservoir(s.pool_pieces, s.pool_chars)
            for path in sorted(layout.candidates(domain).glob("*.parquet")):
                for entry in read_candidates(path):
                    reservoir.add(entry)
            entries = reservoir.entries()
            self.stat_update(f"{domain}_pieces", value=len(entries))
            table = pa.table({c: [getattr(e, c) for e in entries] for c in CANDIDATE_COLUMNS})
            write_atomic(layout.pool(domain), lambda p, t=table: pq.write_table(t, p, compression="zstd"))
            del reservoir, entries, table
        release_memory()  # this runs in the main process, beside the assemble workers that follow
        return data


def load_pool(path: Path, seen_tokens: dict[tuple[str, str, str], int]):
    """The reservoir as assembly candidates (see `assemble.Candidate`); fills `seen_tokens` with their documents'
    counts (`context.ContextCounter.documents`)."""
    import pyarrow.parquet as pq

    from dataset_builder.assemble import PLAN_SLACK, Candidate
    from dataset_builder.context import document_key
    from dataset_builder.schema import Piece

    if not path.is_file():
        return []
    out = []
    for row in pq.read_table(path).to_pylist():
        piece = Piece(row["kind"], row["title"], row["text"])
        seen_tokens[document_key(piece)] = row["tokens"]
        out.append(
            Candidate(piece, row["tokens"] + PLAN_SLACK, owner=-1, group=row["group"] or None, question=row["question"])
        )
    return out
