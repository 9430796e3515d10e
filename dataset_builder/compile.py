"""Compiling trajectory files into an ACC dataset: the Python entry point of the pipeline in `pipeline/`.

    compile_trajectories(["runs/", "more.jsonl"], out_dir="acc_data", seed=0, tasks=8, workers=4)

Inputs are files and directories (walked recursively in sorted order; hidden files and directories are skipped). The
work runs as datatrove stages (read + extract, filler reservoir, assemble per bucket, write) on a local, Slurm or Ray
executor (`pipeline/run.py`); records depend only on the inputs, the settings and the seed, so the output is
byte-identical whatever the number of tasks and workers, and a killed run resumes where it stopped.

Every input ends in exactly one place: a record, or a `Reject` with its reason (`read_and_extract` never raises;
`adapters/triage.py` names the files that are recognisably not trajectories).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dataset_builder.assemble import Compiled
from dataset_builder.budget import MAX_LENGTH, BudgetRange, check_length, default_reasoning_reserve, parse_budgets
from dataset_builder.pipeline.run import ExecutorOptions
from dataset_builder.schema import DOMAINS, ACCRecord, Reject, Trajectory

log = logging.getLogger("acc")

UNKNOWN_DOMAIN = "unknown"  # bucket for rejects whose domain cannot be told (unreadable files, unknown formats)


@dataclass
class DomainCounts:
    n_in: int = 0
    n_records: int = 0
    n_rejected: int = 0
    n_tokens: int = 0
    reasons: Counter = field(default_factory=Counter)

    @property
    def balanced(self) -> bool:
        return self.n_in == self.n_records + self.n_rejected


class CompileResult:
    """What a compile produced: records, rejects, counts per domain and the settings. A result read from a written
    folder (`from_folder`) loads its records and rejects on first access; `submitted` is a Slurm run whose jobs are
    queued (nothing written yet)."""

    def __init__(
        self,
        records: list[ACCRecord] | None = None,
        rejects: list[Reject] | None = None,
        counts: dict[str, DomainCounts] | None = None,
        settings: dict[str, Any] | None = None,
        folder: Path | None = None,
    ):
        self._records, self._rejects = records, rejects
        self.counts, self.settings, self.folder = counts or {}, settings or {}, folder

    @classmethod
    def from_folder(cls, folder: str | Path) -> CompileResult:
        from dataset_builder.pipeline.layout import read_stats

        stats = read_stats(folder)
        counts = {
            dom: DomainCounts(d["n_in"], d["n_records"], d["n_rejected"], sum_tokens(d), Counter(d["reject_reasons"]))
            for dom, d in stats["domains"].items()
        }
        return cls(counts=counts, settings=stats["settings"], folder=Path(folder))

    @classmethod
    def submitted(cls, settings) -> CompileResult:
        return cls([], [], {}, settings.to_stats())

    @property
    def records(self) -> list[ACCRecord]:
        if self._records is None:
            import pyarrow.parquet as pq

            files = sorted(self.folder.glob("data/*/*.parquet")) if self.folder else []
            by_domain = {d: i for i, d in enumerate(DOMAINS)}
            files.sort(key=lambda f: (by_domain.get(f.parent.name, 99), f.name))
            self._records = [ACCRecord.from_row(row) for f in files for row in pq.read_table(f).to_pylist()]
        return self._records

    @property
    def rejects(self) -> list[Reject]:
        if self._rejects is None:
            path = self.folder / "rejects.jsonl" if self.folder else None
            lines = path.read_text(encoding="utf-8").splitlines() if path and path.is_file() else []
            self._rejects = [Reject(**json.loads(line)) for line in lines if line]
        return self._rejects

    @property
    def balanced(self) -> bool:
        return all(c.balanced for c in self.counts.values())


def sum_tokens(domain_stats: dict[str, Any]) -> int:
    return int((domain_stats.get("context_tokens") or {}).get("total", 0))


# ---------------------------------------------------------------- inputs


def origin_key(origin: str, path: str, base: str) -> str:
    """The origin with the machine-specific prefix removed, so record ids do not depend on where inputs live."""
    if not base:
        return origin
    try:
        rel = Path(path).relative_to(base).as_posix()
    except ValueError:
        rel = Path(path).name
    return rel + origin[len(path) :] if origin.startswith(path) else origin


# ---------------------------------------------------------------- pass 1: read + extract


def _adapter_domain(source: str) -> str:
    from dataset_builder.adapters import get_adapter

    try:
        return get_adapter(source).DOMAIN or ""
    except (ValueError, ImportError):
        return ""


def read_trajectories(path: str, fmt: str | None, opts: Any) -> Iterator[Trajectory | Reject]:
    """Every trajectory of one file, or a Reject: files recognisably not trajectories, lines or records the adapters
    reject, and whatever breaks past their checks (a reject for the rest of the file, with the exception type).
    Never raises. A reject that names no domain takes the file's when its trajectories agree on one (those come last,
    once the file is read). Used by `acc compile` and `acc agent-sft`, so both views read the same runs."""
    pending: list[Reject] = []
    domains: set[str] = set()
    n = 0
    try:
        for item in _read_file(str(path), fmt, opts):
            n += 1
            if isinstance(item, Reject) and not item.domain:
                pending.append(item)
                continue
            domains.add(item.domain)
            yield item
    except Exception as err:
        log.debug("read crash on %s", path, exc_info=True)
        where = f"{path} (after {n} items)" if n else str(path)
        pending.append(Reject(where, f"reading failed: {type(err).__name__}: {str(err)[:300]}"))
    for rej in pending:
        if len(domains) == 1:
            rej.domain = next(iter(domains))
        yield rej


def _read_file(path: str, fmt: str | None, opts: Any) -> Iterator[Trajectory | Reject]:
    from dataset_builder.adapters import read_file
    from dataset_builder.adapters.triage import non_trajectory_reason, unknown_format_reason
    from dataset_builder.readers.hub import is_hub_url

    local = not is_hub_url(path)
    known = non_trajectory_reason(Path(path), opts) if local else None
    if known:
        yield Reject(path, known[0], domain=known[1])
        return
    for item in read_file(path, fmt):
        if isinstance(item, Reject):
            if item.reason.startswith("unknown format") and not fmt and local:
                item.reason = unknown_format_reason(Path(path)) or item.reason
            if not item.domain and item.source:
                item.domain = _adapter_domain(item.source)
        yield item


def read_and_extract(
    path: str, base: str, fmt: str | None, domains: tuple[str, ...], opts: Any
) -> list[Compiled | Reject]:
    """Stage read for one file: every trajectory in it -> Compiled (with evidence) or Reject. Never raises."""
    from dataset_builder.domains import CompileError, extract

    items: list[Compiled | Reject] = []
    for item in read_trajectories(str(path), fmt, opts):
        if isinstance(item, Reject):
            items.append(item)
            continue
        if item.domain not in domains:
            reason = f"domain filter: {item.domain} trajectory, compiling only {','.join(domains)}"
            items.append(Reject(item.origin, reason, item.source, item.domain, stage="filter"))
            continue
        try:
            evidence = extract(item, opts)
        except CompileError as err:
            items.append(Reject(item.origin, str(err), item.source, item.domain, stage="compile"))
            continue
        except Exception as err:  # a compiler bug must not stop a run over thousands of trajectories
            log.debug("compiler crash on %s", item.origin, exc_info=True)
            reason = f"{item.domain} compiler failed: {type(err).__name__}: {err}"
            items.append(Reject(item.origin, reason, item.source, item.domain, stage="compile"))
            continue
        traj = replace(item, steps=[])  # steps are not needed after extraction: do not carry them
        items.append(Compiled(traj, evidence, origin_key(item.origin, str(path), str(base))))
    return items


def compile_trajectories(
    inputs: list[str | Path] | str | Path,
    out_dir: str | Path | None = None,
    *,
    domain: str | list[str] | None = None,
    fmt: str | None = None,
    tokenizer: str | None = None,
    budgets: dict[str, BudgetRange] | list[str] | None = None,
    seed: int = 0,
    max_length: int = MAX_LENGTH,
    reasoning_reserve: int | None = None,
    num_proc: int | None = None,
    tasks: int | None = None,
    workers: int | None = None,
    executor: str | ExecutorOptions = "local",
    buckets: int | None = None,
    domain_options: Any = None,
    progress: bool = True,
    command: str = "",
    test_size: float = 0.0,
    keep_work: bool = False,
    secrets: str = "redact",
    secrets_allowlist: str | Path | None = None,
    distractors: str = "mix",
) -> CompileResult:
    """Compile trajectory files into ACC records and write the dataset to `out_dir` (a temporary folder when None:
    the records are then read back into memory; with `out_dir` they are read lazily, on first access).

    `domain` keeps only those domains (others become "domain filter" rejects); `fmt` forces one adapter for every
    file; `budgets` maps domains to `BudgetRange`s or is a list of `--budget` strings; `test_size` holds out that
    share of each domain's questions as a `test` split (`writer.split_of`). `max_length` and `reasoning_reserve`
    (default `budget.default_reasoning_reserve(max_length)`) set the length contract: every record's training row
    (prompt + answer) plus the reserve fits `max_length` (see `budget.py`). `tasks` / `workers` (`num_proc` is an
    alias of workers) split the work; `executor` is "local", "ray", "slurm" or an `ExecutorOptions`; `buckets`
    (default: from the corpus size) is how many filler buckets each domain is split into. `secrets`: what happens to
    credentials and personal data found in a record, "redact" (typed placeholders), "drop" (the record becomes a
    reject) or "off"; `secrets_allowlist`: a file of known-public values to leave alone (see `secrets/`).
    `distractors`: the order filler is chosen in, "close" (BM25 similarity to the question and gold pages),
    "random" or "mix" (see `distractors.py`)."""
    from dataset_builder.distractors import check_mode
    from dataset_builder.domains import DomainOptions
    from dataset_builder.pipeline.run import default_tasks_and_workers, run_pipeline
    from dataset_builder.pipeline.settings import CompileSettings, auto_buckets
    from dataset_builder.readers import input_files
    from dataset_builder.readers.hub import is_hub_url
    from dataset_builder.secrets import check_policy, load_allowlist
    from dataset_builder.tokens import token_counter

    if not 0.0 <= test_size < 1.0:
        raise ValueError(f"test_size must be in [0, 1), got {test_size}")
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    domains = _parse_domains(domain)
    if fmt:
        from dataset_builder.adapters import get_adapter

        get_adapter(fmt)  # ValueError with the list of formats for a bad --format
    reserve = default_reasoning_reserve(max_length) if reasoning_reserve is None else reasoning_reserve
    check_length(max_length, reserve)
    budget_map = parse_budgets(budgets, max_length)
    try:
        counter = token_counter(tokenizer)
    except Exception as err:  # tokenizers raises plain Exceptions for Hub ids it cannot fetch
        raise ValueError(f"cannot load tokenizer {tokenizer!r}: {err}") from err
    files = input_files(list(inputs))
    total_bytes = sum(input_size(f) for f, _ in files)
    settings = CompileSettings(
        budgets=budget_map,
        reasoning_reserve=reserve,
        tokenizer=tokenizer,
        tokenizer_name=counter.name,
        domains=domains,
        fmt=fmt,
        seed=seed,
        max_length=max_length,
        test_size=test_size,
        options=domain_options or DomainOptions(),
        buckets=buckets or auto_buckets(total_bytes),
        command=command,
        inputs=[str(p) if is_hub_url(str(p)) else str(Path(p).resolve()) for p in inputs],
        secrets=check_policy(secrets),
        secrets_allowlist=str(Path(secrets_allowlist).resolve()) if secrets_allowlist else None,
        distractors=check_mode(distractors),
    )
    if secrets_allowlist:
        load_allowlist(secrets_allowlist)  # a missing or unreadable file is a usage error, before any work
    opts = executor if isinstance(executor, ExecutorOptions) else ExecutorOptions(kind=executor)
    auto_tasks, auto_workers = default_tasks_and_workers(len(files), total_bytes)
    opts.tasks = tasks or opts.tasks or auto_tasks
    opts.workers = workers or num_proc or opts.workers or (-1 if opts.kind == "slurm" else auto_workers)
    opts.progress = progress
    opts.keep_work = keep_work
    log.info(
        "compiling %d files (%.1f MB) with %d tasks on %d %s workers, %d buckets per domain, seed %d, tokenizer %s",
        len(files), total_bytes / 1e6, opts.tasks, opts.workers, opts.kind, settings.buckets, seed, counter.name,
    )  # fmt: skip
    if out_dir is None:
        opts.plots = False
        with tempfile.TemporaryDirectory(prefix="acc-compile-") as tmp:
            run_pipeline(settings, files, Path(tmp), opts)
            result = CompileResult.from_folder(tmp)
            result.records, result.rejects  # noqa: B018 (read now: the folder goes away)
            result.folder = None
            return result
    if not run_pipeline(settings, files, Path(out_dir), opts):
        return CompileResult.submitted(settings)
    result = CompileResult.from_folder(out_dir)
    for dom, c in result.counts.items():
        level = logging.INFO if c.balanced else logging.ERROR
        log.log(level, "%s: n_in %d == records %d + rejected %d", dom, c.n_in, c.n_records, c.n_rejected)
    return result


def input_size(path: str) -> int:
    from dataset_builder.readers.hub import hub_filesystem, is_hub_url

    return int(hub_filesystem().info(path).get("size") or 0) if is_hub_url(path) else os.path.getsize(path)


def _parse_domains(domain: str | list[str] | None) -> tuple[str, ...]:
    if not domain:
        return DOMAINS
    wanted = [d.strip() for d in (domain.split(",") if isinstance(domain, str) else domain) if d.strip()]
    bad = [d for d in wanted if d not in DOMAINS]
    if bad:
        raise ValueError(f"unknown domain {', '.join(bad)} (domains: {', '.join(DOMAINS)})")
    return tuple(d for d in DOMAINS if d in wanted)


def reason_class(reason: str) -> str:
    """A reject reason with its specifics (numbers, quoted names, locations) blanked, for grouping in summaries."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", reason)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text[:120]
