"""acc traces: add verified reasoning traces to a compiled ACC dataset.

  acc traces acc_data --teacher-url http://localhost:8000/v1 --model Qwen/Qwen3-235B-A22B-Thinking-2507 -k 4
  acc traces acc_data --teacher-url https://api.openai.com/v1 --model o4-mini --api-key-env OPENAI_API_KEY
  acc traces acc_data --traces trajectory          # offline: keep the agents' own answers that verify

With a teacher (any OpenAI-compatible server: vLLM, SGLang, a hosted API), each record's prompt is sent for up to
k candidates; the first whose answer verifies against the gold is kept as `reasoning` + `answer`. Without
--teacher-url the default is --traces trajectory: no server, the trajectories' own final answers and reasoning.
Records that get no verified trace stay in the dataset with verified=false and the reason in meta.traces.
A dataset compiled with --max-length L keeps every row within L: a verified trace longer than the reserve makes its
record drop distractors (never gold evidence); only a record whose gold alone cannot fit beside the trace is rejected.

The dataset is rewritten in place (each shard replaced atomically) unless --out names another directory, which
receives a full copy. Every teacher response is cached in sqlite (--cache) as soon as it arrives: rerun the same
command after an interruption and it resumes without asking twice. The API key is read from the environment
variable named by --api-key-env and never printed or stored. The summary (attempted, verified, pass rate, tokens per
domain) is printed and written to the card, stats.json and traces_summary.json.
"""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dataset", metavar="DIR", help="a dataset written by `acc compile` (DIR/data/<domain>/*.parquet)"
    )
    parser.add_argument("--out", metavar="DIR", help="write the result here (a copy) instead of rewriting DIR in place")
    parser.add_argument(
        "--traces",
        choices=["teacher", "trajectory"],
        help="where traces come from (default: teacher when --teacher-url is given, else trajectory)",
    )
    parser.add_argument(
        "--teacher-url", metavar="URL", help="base URL of an OpenAI-compatible API, e.g. http://localhost:8000/v1"
    )
    parser.add_argument("--model", metavar="NAME", help="model name the server expects")
    parser.add_argument("-k", type=int, default=4, metavar="N", help="candidates per record at most (default 4)")
    parser.add_argument(
        "--concurrency", type=int, default=8, metavar="C", help="requests in flight at once (default 8)"
    )
    parser.add_argument(
        "--max-tokens", type=int, default=16384, metavar="T", help="max_tokens per request (default 16384)"
    )
    parser.add_argument("--temperature", type=float, default=0.6, help="sampling temperature (default 0.6)")
    parser.add_argument("--top-p", type=float, default=None, help="top_p (default: the server's)")
    parser.add_argument("--seed", type=int, default=0, help="candidate i is sampled with seed+i (default 0)")
    parser.add_argument("--no-seed", action="store_true", help="send no seed (for APIs that reject it)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S", help="seconds per request (default 600)")
    parser.add_argument("--max-retries", type=int, default=6, help="retries on timeouts, 429 and 5xx (default 6)")
    parser.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="environment variable with the API key"
    )
    parser.add_argument("--cache", metavar="FILE", help="sqlite response cache (default ~/.cache/acc-hf/traces.sqlite)")
    parser.add_argument(
        "--domain", action="append", choices=["search", "swe", "sql"], help="only these domains (repeatable)"
    )
    parser.add_argument("--redo-verified", action="store_true", help="also process records that are already verified")
    parser.add_argument(
        "--db-dir", metavar="DIR", help="sql: where the databases are (the --db-dir given to acc compile)"
    )
    parser.add_argument(
        "--db-url",
        action="append",
        default=[],
        metavar="DB_ID=URL",
        help="sql: run gold SQL of records with this db_id on a SQLAlchemy URL, read-only (as given to acc compile; "
        "repeatable)",
    )
    parser.add_argument(
        "--search-f1",
        type=float,
        default=0.8,
        metavar="F",
        help="search: also accept an answer whose token F1 with a gold alias is >= F (default 0.8; 1.0 = normalized "
        "exact match only, as HotpotQA scores; 0.8 also accepts 'Stone Brewing Co.' for 'Stone Brewing', and "
        "'Albany, New York' for 'New York')",
    )
    parser.add_argument(
        "--swe-ignore-whitespace",
        action="store_true",
        help="swe: read damaged diffs leniently, compare modulo whitespace",
    )
    parser.add_argument(
        "--tokenizer",
        metavar="NAME_OR_DIR",
        help="tokenizer that counts rows against the dataset's max_length (default: the one it was compiled with, "
        "from stats.json)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from dataset_builder.compile_cli import parse_db_urls
    from dataset_builder.traces.run import generate_traces
    from dataset_builder.traces.teacher import TeacherConfig

    mode = args.traces or ("teacher" if args.teacher_url else "trajectory")
    teacher = None
    if mode == "teacher":
        if not args.teacher_url or not args.model:
            print("acc traces: --traces teacher needs --teacher-url and --model")
            return 2
        if not os.environ.get(args.api_key_env):
            print(f"note: ${args.api_key_env} is not set; requests carry no API key (fine for a local vLLM/SGLang)")
        teacher = TeacherConfig(
            url=args.teacher_url,
            model=args.model,
            api_key_env=args.api_key_env,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            seed=None if args.no_seed else args.seed,
            timeout=args.timeout,
            concurrency=args.concurrency,
            max_retries=args.max_retries,
        )
    if not 0.0 < args.search_f1 <= 1.0:
        print(f"acc traces: --search-f1 must be in (0, 1], got {args.search_f1}")
        return 2
    verify_opts = {"ignore_whitespace": args.swe_ignore_whitespace, "f1_threshold": args.search_f1}
    if args.db_dir:
        verify_opts["db_root"] = args.db_dir
    try:
        verify_opts["db_urls"] = parse_db_urls(args.db_url)
    except ValueError as err:
        print(f"acc traces: {err}")
        return 2
    try:
        summary = generate_traces(
            args.dataset,
            args.out,
            teacher=teacher,
            k=args.k,
            mode=mode,
            cache_path=args.cache,
            domains=args.domain,
            redo_verified=args.redo_verified,
            verify_opts=verify_opts,
            progress=not args.no_progress,
            tokenizer=args.tokenizer,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"acc traces: {err}")
        return 2
    print(summary.table())
    if summary.max_length:
        t = summary.total()
        print(
            f"\nrows within max_length {summary.max_length} (longest {summary.longest_row}): {t.refitted} re-fitted "
            f"(distractors dropped), {t.over_length} rejected (gold evidence alone could not fit beside the trace)"
        )
    extra = f"; {summary.http_attempts} HTTP requests, {summary.retries} retries" if mode == "teacher" else ""
    print(f"\nwrote {summary.out_dir} (traces: {mode}{extra})")
    return 0
