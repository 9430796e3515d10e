"""The compile pipeline: trajectory files -> ACC records (+ rejects), identical for any number of processes.

    compile_trajectories(["runs/", "more.jsonl"], out_dir="acc_data", seed=0, num_proc=4)

Inputs are files and directories (walked recursively in sorted order; hidden files and directories are skipped).
Pass 1 reads every file with its format adapter and extracts each trajectory's evidence with its domain compiler;
with `num_proc > 1` files are spread over worker processes and the results put back in input order. Pass 2
assembles the records in the main process, with the filler pool built from all trajectories of the run (see
`assemble.py`). Records depend only on the inputs, the settings and the seed, so the output is byte-identical
whatever `num_proc` is.

Every input ends in exactly one place: a record, or a `Reject` with its reason. Files that are recognisably not
trajectories are rejects with a specific reason, decided from their content and shape (not their location):

- SQLite databases (the `SQLite format 3` magic): "database file: pass its directory with --db-dir" (or, for files
  inside --db-dir, "read through --db-dir"); git bundles likewise with --repos;
- CSV/TSV tables: "table file (gold results?) not a trajectory";
- patch files (text starting with `diff --git`, `--- a/` or a `From <sha>` mail header);
- SWE-bench predictions (JSON/JSONL whose rows all carry `model_patch` or `fix_patch` and no agent steps:
  `all_preds.jsonl`, `preds.json`, Multi-SWE-bench `patch.jsonl`);
- benchmark score summaries and evaluation reports (JSON objects of numbers and id lists, no agent steps);
and, when no adapter recognises a file: licence texts, source code, documentation (README/markdown), task lists
and configuration files (JSON/JSONL/YAML without agent steps).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dataset_builder.assemble import Assembler, Compiled
from dataset_builder.budget import MAX_LENGTH, BudgetRange, check_length, default_reasoning_reserve, parse_budgets
from dataset_builder.schema import DOMAINS, ACCRecord, Reject, Trajectory

log = logging.getLogger("acc")

UNKNOWN_DOMAIN = "unknown"  # bucket for rejects whose domain cannot be told (unreadable files, unknown formats)
STEP_KEYS = {"history", "messages", "trajectory", "intermediate_steps", "conversation", "steps", "events"}
CODE_SUFFIXES = (".py", ".js", ".ts", ".sh", ".c", ".h", ".cpp", ".go", ".rs", ".java", ".rb", ".sql")
LICENCE_MARKERS = ("permission is hereby granted", "licensed under", "gnu general public license", "copyright (c)")


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


@dataclass
class CompileResult:
    records: list[ACCRecord]
    rejects: list[Reject]
    counts: dict[str, DomainCounts]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return all(c.balanced for c in self.counts.values())


# ---------------------------------------------------------------- inputs


def expand_inputs(inputs: list[str | Path]) -> list[tuple[Path, Path]]:
    """(file, base) for every file under `inputs`, sorted, each once; `base` keys origins (see `origin_key`).

    Raises FileNotFoundError for an input that does not exist (a usage error, not a reject)."""
    out: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"input not found: {path}")
        if path.is_dir():
            files = []
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
            base = path.parent
        else:
            files, base = [path], path.parent
        for f in files:
            key = f.resolve()
            if key not in seen and f.is_file():
                seen.add(key)
                out.append((f, base))
    return out


def origin_key(origin: str, path: Path, base: Path) -> str:
    """The origin with the machine-specific prefix removed, so record ids do not depend on where inputs live."""
    try:
        rel = path.relative_to(base).as_posix()
    except ValueError:
        rel = path.name
    return rel + origin[len(str(path)) :] if origin.startswith(str(path)) else origin


def _head(path: Path, n: int = 65536) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _json_rows(path: Path, head: bytes) -> list[Any] | None:
    """Rows of a small JSON/JSONL file (for shape checks), or None when it is neither or too large to bother."""
    if path.stat().st_size > 64 * 2**20 or head.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        data = json.loads(text)
        if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
            return list(data.values()) if all("instance_id" in v for v in data.values()) else [data]
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        pass
    rows = []
    for line in text.splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                return None
    return rows


def _is_numbers_or_ids(value: Any) -> bool:
    if isinstance(value, (int, float, bool)) or value is None:
        return True
    if isinstance(value, str):
        return len(value) < 200
    if isinstance(value, list):
        return all(isinstance(v, (str, int, float)) and len(str(v)) < 200 for v in value)
    if isinstance(value, dict):
        return all(_is_numbers_or_ids(v) for v in value.values())
    return False


def _inside(path: Path, folder: Any) -> bool:
    return folder is not None and path.resolve().is_relative_to(Path(folder).resolve())


def non_trajectory_reason(path: Path, opts: Any = None) -> tuple[str, str] | None:
    """(reason, domain) when the file is recognisably not a trajectory, else None. Decided before any adapter."""
    head = _head(path)
    if head.startswith(b"SQLite format 3\x00"):
        if _inside(path, getattr(opts, "db_dir", None)):
            return "database file, not a trajectory (read through --db-dir)", "sql"
        return "database file: pass its directory with --db-dir", "sql"
    if head.startswith((b"# v2 git bundle\n", b"# v3 git bundle\n")):
        if _inside(path, getattr(opts, "repos_dir", None)):
            return "git bundle, not a trajectory (read through --repos)", "swe"
        return "git bundle (a repository): pass its directory with --repos", "swe"
    if b"\x00" in head or not head.strip():
        return None  # binary or empty: the adapters' reader gives the precise reason
    text = head.decode("utf-8", errors="replace")
    if re.match(r"(diff --git |--- a/|From [0-9a-f]{40} )", text.lstrip()):
        return "patch file: a final diff without the trajectory that produced it", "swe"
    if path.suffix.lower() in (".csv", ".tsv") and _looks_tabular(text):
        return "table file (gold results?) not a trajectory", ""
    rows = _json_rows(path, head)
    if rows and all(isinstance(r, dict) for r in rows) and not any(STEP_KEYS & r.keys() for r in rows):
        if all({"model_patch", "fix_patch"} & r.keys() for r in rows):
            return "SWE-bench predictions (final patches only, no trajectory)", "swe"
        if len(rows) == 1 and _is_numbers_or_ids(rows[0]):
            domain = "swe" if {"resolved_ids", "resolved_instances"} & rows[0].keys() else ""  # SWE-bench harness
            return "benchmark score summary or evaluation report (numbers and ids), not a trajectory", domain
    return None


def _looks_tabular(text: str) -> bool:
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:5]), delimiters=",\t;")
    except csv.Error:
        return False
    rows = lines[:-1] if len(lines) > 2 else lines  # the last line of the head may be cut
    widths = {len(row) for row in csv.reader(rows, dialect)}
    return len(rows) >= 2 and len(widths) == 1 and widths.pop() > 1


def unknown_format_reason(path: Path) -> str | None:
    """A specific reason for a file that no adapter recognised, when its kind is clear; else None."""
    head = _head(path, 4096).decode("utf-8", errors="replace")
    name = path.name.lower()
    if name.startswith(("license", "licence", "copying", "notice")) or (
        path.suffix.lower() in ("", ".md", ".txt") and any(m in head[:1000].lower() for m in LICENCE_MARKERS)
    ):
        return "licence text, not a trajectory"
    if path.suffix.lower() in CODE_SUFFIXES:
        return "source code file, not a trajectory"
    if path.suffix.lower() in (".md", ".rst", ".txt") or name.startswith("readme"):
        return "documentation (README/markdown) with no trajectory an adapter recognises"
    if path.suffix.lower() in (".yaml", ".yml", ".toml", ".ini", ".cfg"):
        return "configuration file (YAML/TOML) that no adapter recognises as a trajectory"
    rows = _json_rows(path, head.encode())
    if rows and all(isinstance(r, dict) for r in rows) and not any(STEP_KEYS & r.keys() for r in rows):
        if all({"instruction", "question", "problem_statement"} & r.keys() for r in rows):
            return "task list (questions without agent steps), not a trajectory"
        return "JSON data without agent steps (no history/messages/trajectory), not a trajectory"
    return None


# ---------------------------------------------------------------- pass 1: read + extract


@dataclass
class FileResult:
    items: list[Compiled | Reject]
    n_read: int  # items the file stood for (trajectories + rejects), for the accounting


def _adapter_domain(source: str) -> str:
    from dataset_builder.adapters import get_adapter

    try:
        return get_adapter(source).DOMAIN or ""
    except (ValueError, ImportError):
        return ""


def read_and_extract(path: Path, base: Path, fmt: str | None, domains: tuple[str, ...], opts: Any) -> FileResult:
    """Pass 1 for one file: every trajectory in it -> Compiled (with evidence) or Reject. Never raises."""
    from dataset_builder.adapters import read_file
    from dataset_builder.domains import CompileError, extract

    known = non_trajectory_reason(path, opts)
    if known:
        return FileResult([Reject(str(path), known[0], domain=known[1])], 1)
    items: list[Compiled | Reject] = []
    for item in read_file(path, fmt):
        if isinstance(item, Reject):
            if item.reason.startswith("unknown format") and not fmt:
                item.reason = unknown_format_reason(path) or item.reason
            if not item.domain and item.source:
                item.domain = _adapter_domain(item.source)
            items.append(item)
            continue
        traj: Trajectory = replace(item, steps=[])  # steps are not needed after extraction: do not carry them
        if traj.domain not in domains:
            reason = f"domain filter: {traj.domain} trajectory, compiling only {','.join(domains)}"
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
        items.append(Compiled(traj, evidence, origin_key(item.origin, path, base)))
    # a line that could not be read belongs to the domain of the file's other trajectories, when they agree
    file_domains = {i.traj.domain if isinstance(i, Compiled) else i.domain for i in items} - {""}
    if len(file_domains) == 1:
        for i in items:
            if isinstance(i, Reject) and not i.domain:
                i.domain = next(iter(file_domains))
    return FileResult(items, len(items))


def _read_job(job: tuple) -> FileResult:
    return read_and_extract(*job)


def _pass1(files, fmt, domains, opts, num_proc, progress) -> list[FileResult]:
    from tqdm.auto import tqdm

    jobs = [(path, base, fmt, domains, opts) for path, base in files]
    bar = tqdm(total=len(jobs), desc="read + extract", unit="file", disable=not progress)
    try:
        if num_proc > 1 and len(jobs) > 1:
            import multiprocessing

            # spawn, not fork: the parent may hold tokenizer threads, which a fork would copy in a broken state
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(num_proc, len(jobs)), mp_context=ctx) as pool:
                results = []
                for res in pool.map(_read_job, jobs, chunksize=1):  # map keeps input order
                    results.append(res)
                    bar.update(1)
        else:
            results = []
            for job in jobs:
                results.append(_read_job(job))
                bar.update(1)
    finally:
        bar.close()
    return results


# ---------------------------------------------------------------- the pipeline


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
    num_proc: int = 1,
    domain_options: Any = None,
    progress: bool = True,
    command: str = "",
    test_size: float = 0.0,
) -> CompileResult:
    """Compile trajectory files into ACC records; with `out_dir`, also write the dataset (see `writer.py`).

    `domain` keeps only those domains (others become "domain filter" rejects); `fmt` forces one adapter for every
    file; `budgets` maps domains to `BudgetRange`s or is a list of `--budget` strings; `test_size` holds out that
    share of each domain's questions as a `test` split when the dataset is written (`writer.split_of`).
    `max_length` and `reasoning_reserve` (default `budget.default_reasoning_reserve(max_length)`) set the length
    contract: every record's training row (prompt + answer) plus the reserve fits `max_length` (see `budget.py`)."""
    from dataset_builder.domains import DomainOptions
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
    opts = domain_options or DomainOptions()
    files = expand_inputs(list(inputs))
    log.info("compiling %d files (seed %d, %d processes, tokenizer %s)", len(files), seed, num_proc, counter.name)

    results = _pass1(files, fmt, domains, opts, max(1, num_proc), progress)
    counts: dict[str, DomainCounts] = {}
    compiled: list[Compiled] = []
    rejects: list[Reject] = []
    for (path, _), res in zip(files, results):
        log.debug("%s: %d items", path, res.n_read)
        for item in res.items:
            if isinstance(item, Reject):
                log.debug("reject %s: %s", item.origin, item.reason)
            dom = item.traj.domain if isinstance(item, Compiled) else (item.domain or UNKNOWN_DOMAIN)
            counts.setdefault(dom, DomainCounts()).n_in += 1
            (compiled if isinstance(item, Compiled) else rejects).append(item)

    from tqdm.auto import tqdm

    assembler = Assembler(counter, budget_map, seed, max_length=max_length, reasoning_reserve=reserve)
    records: list[ACCRecord] = []
    seen_ids: dict[str, str] = {}
    with tqdm(total=len(compiled), desc="assemble", unit="record", disable=not progress) as bar:
        for item, out in zip(compiled, assembler.assemble(compiled, progress=bar)):
            if isinstance(out, ACCRecord) and out.id in seen_ids:
                reason = f"duplicate trajectory: same source, id and origin as {seen_ids[out.id]}"
                out = Reject(item.traj.origin, reason, item.traj.source, item.traj.domain, stage="compile")
            if isinstance(out, Reject):
                rejects.append(out)
            else:
                seen_ids[out.id] = item.traj.origin
                records.append(out)

    for rec in records:
        c = counts[rec.domain]
        c.n_records += 1
        c.n_tokens += rec.n_tokens
    for rej in rejects:
        c = counts[rej.domain or UNKNOWN_DOMAIN]
        c.n_rejected += 1
        c.reasons[reason_class(rej.reason)] += 1
    settings = {
        "seed": seed,
        "test_size": test_size,
        "tokenizer": counter.name,
        "budgets": {d: [b.low, b.high] for d, b in budget_map.items()},
        "max_length": max_length,
        "reasoning_reserve": reserve,
        "domains": list(domains),
        "format": fmt or "auto",
        "command": command,
        # local paths: `acc traces` finds the databases through db_dir; `acc push` rewrites them all (see push.py)
        "inputs": [str(Path(p).resolve()) for p in inputs],
        "db_dir": str(Path(opts.db_dir).resolve()) if opts.db_dir else None,
        "repos_dir": str(Path(opts.repos_dir).resolve()) if opts.repos_dir else None,
        "page_cache_dir": str(Path(opts.page_cache_dir).resolve()) if opts.page_cache_dir else None,
    }
    result = CompileResult(records, rejects, dict(sorted(counts.items())), settings)
    for dom, c in result.counts.items():
        level = logging.INFO if c.balanced else logging.ERROR
        log.log(level, "%s: n_in %d == records %d + rejected %d", dom, c.n_in, c.n_records, c.n_rejected)
    if out_dir is not None:
        from dataset_builder.writer import write_dataset

        write_dataset(out_dir, result)
    return result


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
