"""Per-domain evidence compilers: a normalized `Trajectory` -> its gold evidence pieces and its own distractors.

    extract(traj, opts) -> Evidence        # raises CompileError(reason) when no record can be made

- `search` (domains/search.py): the pages the agent visited (observation text, or a page cache for truncated ones);
  distractors are the search results it saw but did not open.
- `swe` (domains/swe.py): files touched by the gold / final patch and files the agent inspected, at the base commit
  (a local git checkout when given, else rebuilt from the views in the observations); distractors are other files of
  the repository it listed (checkout only).
- `sql` (domains/sql.py): every table the agent's SQL touched (schema + all rows), read from the database opened
  read-only; distractors are the other tables of the same database.

Extraction only: token budgets, cross-trajectory filler, shuffling and rendering happen in `assemble.py`.
Nothing found in a trajectory is ever executed (SQL and shell commands are parsed, never run), and file paths named
by a trajectory are confined to the repository root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset_builder.schema import Piece, Trajectory


class CompileError(Exception):
    """The trajectory cannot become a record; the message is the reject reason."""


@dataclass
class DomainOptions:
    repos_dir: Path | None = None  # swe: local git checkouts, one per repository (owner__name, name or owner/name)
    db_dir: Path | None = None  # sql: database files (sqlite), matched by db_id
    db_urls: dict[str, str] = field(default_factory=dict)  # sql: db_id -> SQLAlchemy URL (any engine)
    page_cache_dir: Path | None = None  # search: full page texts by url (see domains/search.py)
    # task tables and run selection (readers/tasks.py): --task-table SOURCE, --only-resolved, --max-per-instance N
    tasks: str | None = None  # a task table (parquet / jsonl / directory / hf://) joined on instance id
    only_resolved: bool = False
    max_per_instance: int = 0  # 0: no cap


@dataclass
class Evidence:
    gold: list[Piece]  # evidence the answer needs: always all in the context
    distractors: list[Piece]  # the trajectory's own distractors (is_distractor=True)
    answer: str = ""  # the record's answer (search: short answer, swe: unified diff, sql: the agent's final answer)
    gold_answer: str = ""  # ground truth when known
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-serializable details (urls, tables, coverage, notes)


def extract(traj: Trajectory, opts: DomainOptions | None = None) -> Evidence:
    """Gold evidence + own distractors of one trajectory. Raises CompileError with the reason when impossible."""
    opts = opts or DomainOptions()
    from dataset_builder.readers.tasks import prepare

    prepare(traj, opts)  # --tasks join, --only-resolved, --max-per-instance (may raise CompileError)
    if traj.domain == "search":
        from dataset_builder.domains import search as module
    elif traj.domain == "swe":
        from dataset_builder.domains import swe as module
    elif traj.domain == "sql":
        from dataset_builder.domains import sql as module
    else:
        raise CompileError(f"unknown domain {traj.domain!r} (domains: search, swe, sql)")
    evidence = module.extract(traj, opts)
    if not evidence.gold:
        raise CompileError(f"{traj.domain}: no gold evidence")
    return evidence
