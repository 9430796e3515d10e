"""Compile throughput, and its cost relative to tokenizing the same output text alone, measured side by side.

    python bench/compile.py [--inputs DIR ...] [--repeats 3] [--num-proc 1] [--budget swe=32k ...]
    python bench/compile.py --scale [--sizes 10000,100000] [--workers 2]   (memory and time vs corpus size: scale.py)

Inputs: the real trajectories of ../shared/fixtures/real when present, else the samples bundled with acc-hf. Each
repeat runs, in one process and in turn: (1) `compile_trajectories` in memory (read, extract, assemble); (2) the
tokenizer alone on the contexts that run produced (`count_batch`, the same batching compile uses); (3) writing the
dataset (parquet, card, plots). Prints one JSON line per measurement and a summary line with medians:
trajectories/s, context tokens/s, and compile_time / tokenizer_only_time (the price of everything that is not
tokenization; 1.0 would mean compiling costs no more than counting the tokens of its output once). Each repeat also
compiles the same inputs with `secrets="off"`: `scan_on_over_off` is the compile time with the secret scan (the
default, `--secrets redact`) over the time without it (goal: <= 1.25).

Dataset rows (`parquet_rows`): the real nebius SWE-agent and SWE-Gym OpenHands rows repeated into one parquet shard
and one jsonl file (--parquet-rows rows each), read into trajectories with `read_file` (row reader + row layout
adapter): rows/s from parquet, from jsonl, their ratio, and the seconds to the first trajectory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "fixtures" / "real"
SAMPLES = ROOT / "dataset_builder" / "samples"


def default_inputs() -> tuple[list[Path], dict]:
    if REAL.is_dir():
        return [REAL], {"db_dir": REAL / "sql"}
    return [SAMPLES / d for d in ("search", "sql", "swe")], {
        "db_dir": SAMPLES / "sql",
        "repos_dir": SAMPLES / "swe",
        "page_cache_dir": SAMPLES / "corpus",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--inputs", nargs="*", type=Path, help="trajectory files/dirs (default: real fixtures or samples)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--budget", action="append", default=[], help="as for acc compile (default budgets otherwise)")
    parser.add_argument("--tokenizer", default=None)
    parser.add_argument("--parquet-rows", type=int, default=2000, help="rows of the dataset-row measurement (0: skip)")
    parser.add_argument(
        "--no-similarity", action="store_true", help="skip distractor similarity close vs random (bench/contexts.py)"
    )
    parser.add_argument("--scale", action="store_true", help="synthetic corpora at --sizes instead (bench/scale.py)")
    parser.add_argument("--sizes", default="10000,100000", help="--scale: corpus sizes (trajectories)")
    parser.add_argument("--workers", type=int, default=2, help="--scale: compile workers")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.scale:
        from scale import measure

        return measure([int(s) for s in args.sizes.split(",")], args.workers, args.budget)

    from dataset_builder.compile import compile_trajectories
    from dataset_builder.domains import DomainOptions
    from dataset_builder.tokens import token_counter
    from dataset_builder.writer import write_dataset

    inputs, resources = (args.inputs, {}) if args.inputs else default_inputs()
    opts = DomainOptions(**resources)
    counter = token_counter(args.tokenizer)
    common = {"source": "real fixtures" if inputs == [REAL] else " ".join(map(str, inputs)), "num_proc": args.num_proc}

    # warm-up: imports, tokenizer load, OS file cache (not measured)
    compile_trajectories(
        inputs, None, budgets=args.budget, domain_options=opts, progress=False, tokenizer=args.tokenizer
    )
    rows = []
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        result = compile_trajectories(
            inputs,
            None,
            budgets=args.budget,
            num_proc=args.num_proc,
            domain_options=opts,
            progress=False,
            tokenizer=args.tokenizer,
        )
        t_compile = time.perf_counter() - t0
        t0 = time.perf_counter()  # the same compile without the secret scan (--secrets off), side by side
        compile_trajectories(
            inputs, None, budgets=args.budget, num_proc=args.num_proc, domain_options=opts, progress=False,
            tokenizer=args.tokenizer, secrets="off",
        )  # fmt: skip
        t_no_scan = time.perf_counter() - t0
        contexts = [r.context for r in result.records]
        t0 = time.perf_counter()
        n_tok = sum(sum(counter.count_batch(contexts[i : i + 16])) for i in range(0, len(contexts), 16))
        t_tokenize = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_dataset(tmp, result)
            t_write = time.perf_counter() - t0
        n_in = sum(c.n_in for c in result.counts.values())
        assert n_tok == sum(r.n_tokens for r in result.records), "token counts disagree"
        row = {
            "repeat": rep,
            **common,
            "n_in": n_in,
            "n_records": len(result.records),
            "n_rejected": len(result.rejects),
            "context_tokens": n_tok,
            "compile_s": round(t_compile, 3),
            "tokenize_only_s": round(t_tokenize, 3),
            "write_s": round(t_write, 3),
            "trajectories_per_s": round(n_in / t_compile, 1),
            "tokens_per_s": round(n_tok / t_compile),
            "tokenize_only_tokens_per_s": round(n_tok / t_tokenize),
            "compile_over_tokenize": round(t_compile / t_tokenize, 2),
            "compile_no_scan_s": round(t_no_scan, 3),
            "scan_on_over_off": round(t_compile / t_no_scan, 3),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    def med(key):
        return round(statistics.median(r[key] for r in rows), 3)

    summary = {
        "summary": "median",
        **common,
        "n_in": rows[0]["n_in"],
        "n_records": rows[0]["n_records"],
        "context_tokens": rows[0]["context_tokens"],
        "trajectories_per_s": med("trajectories_per_s"),
        "tokens_per_s": med("tokens_per_s"),
        "tokenize_only_tokens_per_s": med("tokenize_only_tokens_per_s"),
        "compile_over_tokenize": med("compile_over_tokenize"),
        "scan_on_over_off": med("scan_on_over_off"),
        "write_s": med("write_s"),
    }
    if args.parquet_rows and REAL.is_dir():
        parquet = parquet_rows(args.parquet_rows)
        print(json.dumps(parquet), flush=True)
        summary["parquet_rows_per_s"] = parquet["parquet_rows_per_s"]
    print(json.dumps(summary), flush=True)
    if not args.no_similarity and (REAL / "search").is_dir():  # search fixtures compiled per --distractors mode
        from contexts import distractor_similarity

        print(json.dumps(distractor_similarity([REAL / "search"])), flush=True)
    return 0


def parquet_rows(n_rows: int) -> dict:
    """rows/s of read_file over a parquet shard and over a jsonl file of the same real rows, side by side."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataset_builder.adapters import read_file
    from dataset_builder.schema import Trajectory

    base = REAL / "swe" / "zhu-yiqi__agent-data-protocol" / "datasets"
    sources = [
        base / "nebius_SWE-agent-trajectories" / "sample_raw.json",
        base / "swe-gym_openhands_sampled_trajectories" / "sample_raw.json",
    ]
    out = {"measure": "parquet_rows", "n_rows": n_rows}
    with tempfile.TemporaryDirectory() as tmp:
        for src in sources:
            rows = json.loads(src.read_text())
            rows = [
                dict(rows[i % len(rows)], instance_id=f"{rows[i % len(rows)]['instance_id']}-{i}")
                for i in range(n_rows)
            ]
            name = src.parent.name.split("_")[0]
            pq.write_table(pa.Table.from_pylist(rows), Path(tmp) / f"{name}.parquet", row_group_size=256)
            with open(Path(tmp) / f"{name}.jsonl", "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
        for kind in ("parquet", "jsonl"):
            n = 0
            first = None
            t0 = time.perf_counter()
            for path in sorted(Path(tmp).glob(f"*.{kind}")):
                for item in read_file(path):
                    n += isinstance(item, Trajectory)
                    first = first or time.perf_counter() - t0
            seconds = time.perf_counter() - t0
            assert n == 2 * n_rows, f"{kind}: {n} trajectories from {2 * n_rows} rows"
            out[f"{kind}_rows_per_s"] = round(n / seconds, 1)
            out[f"{kind}_first_trajectory_s"] = round(first, 3)
    out["parquet_over_jsonl"] = round(out["parquet_rows_per_s"] / out["jsonl_rows_per_s"], 2)
    return out


if __name__ == "__main__":
    sys.exit(main())
