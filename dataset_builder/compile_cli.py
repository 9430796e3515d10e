"""acc compile: turn agent trajectories into an ACC dataset (parquet shards + dataset card + rejects).

  acc compile runs/ more_runs.jsonl --out acc_data
  acc compile spider_runs/ --out acc_sql --domain sql --db-dir databases/ --budget sql=4k:16k
  acc compile --samples --out acc_demo          # the trajectories bundled with acc-hf

Inputs are trajectory files or directories (searched recursively). The format of each file is detected (or forced
with --format); every trajectory becomes a record or a line in OUT/rejects.jsonl with the reason, and the summary
printed at the end shows inputs = records + rejects for each domain. Rejects are normal (failed runs, missing
databases, evidence too large for --max-length); the exit code is 0 unless the command was misused or nothing was readable.
Load the result with `datasets.load_dataset(OUT, "swe")` (configs: search, swe, sql, all).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections import Counter
from pathlib import Path

from dataset_builder.budget import MAX_LENGTH, MAX_REASONING_RESERVE, parse_size

SAMPLES_DIR = Path(__file__).parent / "samples"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="trajectory files or directories (recursive)")
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output directory (created; its shards are replaced)"
    )
    parser.add_argument(
        "--domain", metavar="D[,D]", help="compile only these domains (search, swe, sql); others are counted as rejects"
    )
    parser.add_argument(
        "--format", dest="fmt", metavar="NAME", help="read every file with this adapter instead of detecting the format"
    )
    parser.add_argument(
        "--tokenizer",
        metavar="NAME_OR_DIR",
        help="tokenizer that counts budgets: a Hub id (e.g. Qwen/Qwen3-30B-A3B) or a directory with tokenizer.json "
        "(default: the small tokenizer bundled with acc-hf)",
    )
    parser.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="SPEC",
        help="token budget per domain: swe=32768 (fixed), sql=4k:16k (log-uniform range) or a YAML file mapping "
        "domains to either; repeatable. Defaults: search 8k-64k, swe 16k-128k, sql 4k-32k, clipped per record to what "
        "--max-length leaves for the context",
    )
    parser.add_argument(
        "--max-length",
        default=str(MAX_LENGTH),
        metavar="TOKENS",
        help=f"tokens per training row, the recipe's max_length (default {MAX_LENGTH} = 128k): each record's budget "
        "leaves room in it for the question, the answer, the chat template and --reasoning-reserve; a record whose "
        "gold evidence cannot fit is rejected, never cut. Raise it for models with longer windows, e.g. 256k",
    )
    parser.add_argument(
        "--reasoning-reserve",
        metavar="TOKENS",
        help=f"tokens of each row kept free for the reasoning trace `acc traces` adds (default: min("
        f"{MAX_REASONING_RESERVE}, max-length / 2); thinking teachers write 5k-20k tokens and acc traces asks for at "
        f"most {MAX_REASONING_RESERVE}, while a short window keeps at least half of itself for the prompt). A longer "
        "trace makes acc traces drop distractors, never gold evidence",
    )
    parser.add_argument("--num-proc", type=int, default=1, metavar="N", help="processes reading files (same output)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of budgets, distractors and order")
    parser.add_argument(
        "--test-size",
        type=float,
        default=0.0,
        metavar="F",
        help="hold out a seeded share F of each domain's questions as a `test` split (all records of a question stay "
        "together; default 0: train only). Train with it: `acc train ... --dataset_eval_split test`",
    )
    parser.add_argument(
        "--repos", type=Path, metavar="DIR", help="swe: local git checkouts (file text at the base commit)"
    )
    parser.add_argument("--db-dir", type=Path, metavar="DIR", help="sql: directory of database files, found by db_id")
    parser.add_argument(
        "--db-url",
        action="append",
        default=[],
        metavar="ID=URL",
        help="sql: SQLAlchemy URL of the database with this db_id (any engine, opened read-only); repeatable",
    )
    parser.add_argument("--page-cache", type=Path, metavar="DIR", help="search: full page texts for truncated pages")
    parser.add_argument(
        "--samples",
        action="store_true",
        help="compile the trajectories bundled with acc-hf (also the default without INPUTs)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (each file, each reject)")


def sample_inputs() -> tuple[list[Path], dict[str, Path]]:
    """The bundled sample trajectories and the resources they need (database dir, repository, page cache)."""
    dirs = [SAMPLES_DIR / d for d in ("search", "sql", "swe") if (SAMPLES_DIR / d).is_dir()]
    if not dirs:
        "--tasks",
        metavar="SOURCE",
        help="task table joined on instance id (parquet / jsonl / directory / hf://datasets/ORG/NAME, e.g. SWE-bench, "
        "SWE-rebench, BIRD): repo, base commit and gold patch / SQL / answer; unresolved SWE runs then answer with "
        "the gold patch",
    )
    parser.add_argument("--only-resolved", action="store_true", help="keep only runs the source marks resolved")
    parser.add_argument(
        "--max-per-instance",
        type=int,
        default=8,
        metavar="N",
        help="at most N runs of one task instance, the first read (default 8; 0: no cap)",
    )
    parser.add_argument(
        raise FileNotFoundError(
            f"the bundled samples are missing ({SAMPLES_DIR} has no search/, sql/ or swe/); reinstall acc-hf or pass INPUTs"
        )
    resources = {
        "db_dir": SAMPLES_DIR / "sql",
        "repos_dir": SAMPLES_DIR / "swe",
        "page_cache_dir": SAMPLES_DIR / "corpus",
    }
    return dirs, {k: v for k, v in resources.items() if v.is_dir()}


def parse_db_urls(items: list[str]) -> dict[str, str]:
    urls = {}
    for item in items:
        db_id, sep, url = item.partition("=")
        if not sep or not db_id.strip() or not url.strip():
            raise ValueError(f"--db-url {item!r}: expected DB_ID=URL, e.g. chinook=sqlite:///Chinook.sqlite")
        urls[db_id.strip()] = url.strip()
    return urls


def run(args: argparse.Namespace) -> int:
    from dataset_builder.budget import parse_budgets
    from dataset_builder.compile import compile_trajectories
    from dataset_builder.domains import DomainOptions

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        inputs: list = [p if p.startswith("hf://") else Path(p) for p in args.inputs]
        resources: dict[str, Path] = {}
        if args.samples or not inputs:
            sample_dirs, resources = sample_inputs()
            inputs += sample_dirs
        for opt in ("repos", "db_dir", "page_cache"):
            value = getattr(args, opt)
            if value is not None and not value.is_dir():
                raise ValueError(f"--{opt.replace('_', '-')} {value}: not a directory")
        opts = DomainOptions(
            repos_dir=args.repos or resources.get("repos_dir"),
            db_dir=args.db_dir or resources.get("db_dir"),
            db_urls=parse_db_urls(args.db_url),
            page_cache_dir=args.page_cache or resources.get("page_cache_dir"),
            tasks=args.tasks,
            only_resolved=args.only_resolved,
            max_per_instance=max(0, args.max_per_instance),
        )
        if args.num_proc < 1:
            raise ValueError("--num-proc must be >= 1")
        if args.tasks:
            from dataset_builder.readers.tasks import load_tasks

            load_tasks(args.tasks)  # a task table that cannot be read is a usage error, before any work
        max_length = parse_size(args.max_length)
        reserve = parse_size(args.reasoning_reserve) if args.reasoning_reserve is not None else None
        budgets = parse_budgets(args.budget, max_length)
        result = compile_trajectories(
            inputs,
            args.out,
            domain=args.domain,
            fmt=args.fmt,
            tokenizer=args.tokenizer,
            budgets=budgets,
            seed=args.seed,
            max_length=max_length,
            reasoning_reserve=reserve,
            num_proc=args.num_proc,
            domain_options=opts,
            progress=not args.no_progress,
            command=command_line(args),
            test_size=args.test_size,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary_table(result))
    print(f"\nwrote {args.out}: {len(result.records)} records, rejects in {Path(args.out) / 'rejects.jsonl'}")
    if args.test_size:
        from dataset_builder.writer import split_of

        held = Counter(r.domain for r in result.records if split_of(r, args.test_size, args.seed) == "test")
        per_domain = ", ".join(f"{d} {n}" for d, n in sorted(held.items())) or "none"
        print(f"test split (--test-size {args.test_size:g}): {sum(held.values())} records ({per_domain})")
    if not result.balanced:
        print("error: inputs != records + rejects (a bug: please report it with stats.json)", file=sys.stderr)
        return 1
    n_in = sum(c.n_in for c in result.counts.values())
    if n_in == 0 or all(r.stage == "read" for r in result.rejects) and not result.records:
        print("error: nothing readable: no trajectory could be read from the inputs", file=sys.stderr)
        return 1
    return 0


def command_line(args: argparse.Namespace) -> str:
    """The command as it was given (rebuilt from the parsed options, so it is the same however `acc` was called)."""
    parts = ["acc", "compile", *args.inputs, "--out", args.out]
    for flag, value in [
        ("--samples", args.samples),
        ("--domain", args.domain),
        ("--format", args.fmt),
        ("--tokenizer", args.tokenizer),
        *[("--budget", b) for b in args.budget],
        ("--max-length", args.max_length if parse_size(args.max_length) != MAX_LENGTH else None),
        ("--reasoning-reserve", args.reasoning_reserve),
        ("--num-proc", args.num_proc if args.num_proc != 1 else None),
        ("--seed", args.seed if args.seed else None),
        ("--test-size", args.test_size if args.test_size else None),
        ("--repos", args.repos),
        ("--db-dir", args.db_dir),
        *[("--db-url", u.split("=", 1)[0] + "=...") for u in args.db_url],  # URLs may hold passwords
        ("--page-cache", args.page_cache),
    ]:
        if value is True:
            parts.append(flag)
        ("--tasks", args.tasks),
        ("--only-resolved", args.only_resolved),
        ("--max-per-instance", args.max_per_instance if args.max_per_instance != 8 else None),
        elif value not in (None, False, ""):
            parts += [flag, str(value)]
    return " ".join(shlex.quote(str(p)) for p in parts)


def summary_table(result, top: int = 3) -> str:
    """Per domain: inputs = records + rejects, context tokens, and the most frequent reject reasons."""
    rows = [("domain", "inputs", "records", "rejects", "tokens", "top reject reasons")]
    for dom, c in result.counts.items():
        reasons = "; ".join(f"{n}x {r}" for r, n in c.reasons.most_common(top)) or "-"
        rows.append((dom, str(c.n_in), str(c.n_records), str(c.n_rejected), f"{c.n_tokens:,}", reasons))
    total = [sum(c.n_in for c in result.counts.values()), len(result.records), len(result.rejects)]
    tokens = sum(c.n_tokens for c in result.counts.values())
    rows.append(
        ("total", *map(str, total), f"{tokens:,}", "inputs = records + rejects" if result.balanced else "UNBALANCED")
    )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for k, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in range(1, 5)] + [row[5]]
        lines.append("  ".join(cells))
        if k == 0 or k == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 18)
    return "\n".join(lines)
