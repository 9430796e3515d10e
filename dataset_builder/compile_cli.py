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
    run = parser.add_argument_group("running at scale (datatrove; the output is the same bytes whatever these are)")
    run.add_argument(
        "--executor",
        choices=("local", "slurm", "ray"),
        default="local",
        help="local: processes on this machine (default); slurm: one job array per stage, chained; ray: the Ray "
        "cluster at $RAY_ADDRESS, or a local one started here (pip install 'acc-hf[ray]')",
    )
    run.add_argument(
        "--tasks",
        type=int,
        metavar="N",
        help="tasks the input files (and then the filler buckets) are split into; a killed run started again redoes "
        "only unfinished tasks (default: 4 per worker, at most one per file)",
    )
    run.add_argument(
        "--workers",
        "--num-proc",
        type=int,
        metavar="W",
        help="tasks running at once (default: one per 2 cores, the tokenizer uses 2 threads)",
    )
    run.add_argument(
        "--buckets",
        type=int,
        metavar="B",
        help="filler buckets per domain (same repository / database / question share one); a bucket is assembled "
        "in memory (default: one per 16 MB of input, at least 8, at most 4096)",
    )
    run.add_argument("--keep-work", action="store_true", help="keep OUT/.acc-work's intermediate files after the run")
    run.add_argument("--partition", help="slurm: partition")
    run.add_argument("--slurm-time", default="04:00:00", metavar="HH:MM:SS", help="slurm: time limit per task")
    run.add_argument("--cpus-per-task", type=int, default=2, metavar="N", help="slurm / ray: CPUs per task")
    run.add_argument("--mem-per-cpu-gb", type=float, default=4, metavar="GB", help="slurm / ray: memory per CPU")
    run.add_argument(
        "--env-command",
        default="",
        metavar="CMD",
        help="slurm: shell command that activates the environment in each job (default: this virtualenv)",
    )
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
        "--task-table",
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
        "--samples",
        action="store_true",
        help="compile the trajectories bundled with acc-hf (also the default without INPUTs)",
    )
    parser.add_argument(
        "--secrets",
        choices=("redact", "drop", "off"),
        default="redact",
        help="credentials and personal data found in a record (API keys, tokens, private keys, passwords, emails, "
        "public IPs, user names in home paths): redact = typed placeholders like <SECRET:aws_access_key> (default); "
        "drop = the record becomes a reject naming the types; off = no scan (recorded in the card)",
    )
    parser.add_argument(
        "--secrets-allowlist", metavar="FILE", help="known-public values (one per line) the secret scan leaves alone"
    )
    parser.add_argument(
        "--distractors",
        choices=("close", "random", "mix"),
        default="mix",
        help="order filler is chosen in: close (BM25 similarity to the question and gold pages: hard distractors), "
        "random, or mix (default: each pick close or random by a seeded coin flip); for ablations",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (each file, each reject)")


def sample_inputs() -> tuple[list[Path], dict[str, Path]]:
    """The bundled sample trajectories and the resources they need (database dir, repository, page cache)."""
    dirs = [SAMPLES_DIR / d for d in ("search", "sql", "swe") if (SAMPLES_DIR / d).is_dir()]
    if not dirs:
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
    from dataset_builder.pipeline.run import ExecutorOptions

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
            tasks=args.task_table,
            only_resolved=args.only_resolved,
            max_per_instance=max(0, args.max_per_instance),
        )
        for name in ("tasks", "workers", "buckets"):
            if getattr(args, name) is not None and getattr(args, name) < 1:
                raise ValueError(f"--{name} must be >= 1")
        if args.task_table:
            from dataset_builder.readers.tasks import load_tasks

            load_tasks(args.task_table)  # a task table that cannot be read is a usage error, before any work
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
            tasks=args.tasks,
            workers=args.workers,
            buckets=args.buckets,
            executor=ExecutorOptions(
                kind=args.executor,
                partition=args.partition or "",
                time=args.slurm_time,
                cpus_per_task=args.cpus_per_task,
                mem_per_cpu_gb=args.mem_per_cpu_gb,
                env_command=args.env_command,
            ),
            keep_work=args.keep_work,
            domain_options=opts,
            progress=not args.no_progress,
            command=command_line(args),
            test_size=args.test_size,
            secrets=args.secrets,
            secrets_allowlist=args.secrets_allowlist,
            distractors=args.distractors,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.executor == "slurm" and not result.counts:
        logs = Path(args.out) / ".acc-work" / "logs"
        print(f"submitted 4 chained Slurm job arrays (read, pool, assemble, finalize); logs and scripts in {logs}")
        print("when they are done, run the same command again to print the summary (finished tasks are not redone)")
        return 0
    print(summary_table(result))
    n_records = sum(c.n_records for c in result.counts.values())
    print(f"\nwrote {args.out}: {n_records} records, rejects in {Path(args.out) / 'rejects.jsonl'}")
    print(secrets_line(args.out))
    if args.test_size:
        from dataset_builder.pipeline.layout import read_stats

        domains = read_stats(args.out)["domains"]
        held = {d: s["splits"]["test"]["n_records"] for d, s in domains.items() if "test" in s.get("splits", {})}
        per_domain = ", ".join(f"{d} {n}" for d, n in sorted(held.items())) or "none"
        print(f"test split (--test-size {args.test_size:g}): {sum(held.values())} records ({per_domain})")
    if not result.balanced:
        print("error: inputs != records + rejects (a bug: please report it with stats.json)", file=sys.stderr)
        return 1
    n_in = sum(c.n_in for c in result.counts.values())
    if n_in == 0 or n_records == 0 and all(r.stage == "read" for r in result.rejects):
        print("error: nothing readable: no trajectory could be read from the inputs", file=sys.stderr)
        return 1
    return 0


def secrets_line(out: str) -> str:
    """One line on the secret scan of the run (from stats.json)."""
    from dataset_builder.pipeline.layout import read_stats

    s = read_stats(out).get("secrets") or {}
    if s.get("policy") == "off":
        return "secrets: NOT scanned (--secrets off); the card says so"
    types = ", ".join(f"{t} {n}" for t, n in (s.get("by_type") or {}).items()) or "none found"
    return (
        f"secrets ({s.get('policy')}): {s.get('n_findings', 0)} findings in {s.get('n_records_with_findings', 0)} "
        f"records ({types}); locations in {Path(out) / 'secrets.jsonl'} (local, never pushed)"
    )


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
        ("--buckets", args.buckets),  # (executor, tasks and workers do not change the output: not recorded)
        ("--seed", args.seed if args.seed else None),
        ("--test-size", args.test_size if args.test_size else None),
        ("--repos", args.repos),
        ("--db-dir", args.db_dir),
        *[("--db-url", u.split("=", 1)[0] + "=...") for u in args.db_url],  # URLs may hold passwords
        ("--page-cache", args.page_cache),
        ("--task-table", args.task_table),
        ("--only-resolved", args.only_resolved),
        ("--max-per-instance", args.max_per_instance if args.max_per_instance != 8 else None),
        ("--secrets", args.secrets if args.secrets != "redact" else None),
        ("--secrets-allowlist", Path(args.secrets_allowlist).name if args.secrets_allowlist else None),
        ("--distractors", args.distractors if args.distractors != "mix" else None),
    ]:
        if value is True:
            parts.append(flag)
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
