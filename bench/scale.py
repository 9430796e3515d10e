"""How compile memory and time grow with the corpus: seeded synthetic search corpora compiled at several sizes.

    python bench/compile.py --scale [--sizes 10000,100000] [--workers 2] [--budget search=8k:16k]

Each trajectory is one OpenAI-messages run (a web_search, then three visit_webpage calls returning pages of ~1,500
words; distinct texts, composed from a seeded paragraph bank) in JSONL shards of 1,000 runs. Every size is compiled
in a fresh process; a sampler adds up the RSS of that process and all its children every 50 ms (peak RSS of the
whole process tree), and their PSS (Linux): RSS counts a page shared by several processes once per process, and
datatrove's local executor forks a copy of the main process for its `multiprocess.Manager`, whose pages are mostly
the parent's; PSS splits each shared page between its processes, so the sum is what the tree really holds. Then the tokenizer alone counts the same output contexts (read back from the shards) for
compile time / tokenize-only time. At the smallest size the compile also runs with 1 worker: the speedup of
`--workers` over 1 is printed. One JSON line per measurement, then a summary with the memory ratio largest/smallest.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "dataset_builder" / "samples" / "corpus"
RUNS_PER_SHARD = 1000

COMPILE = """
import json, sys, time
from dataset_builder.compile import compile_trajectories
if __name__ == "__main__":
    inputs, out, workers, budgets = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    t0 = time.perf_counter()
    r = compile_trajectories([inputs], out, workers=workers, budgets=budgets or None, progress=False)
    n_in = sum(c.n_in for c in r.counts.values())
    n_records = sum(c.n_records for c in r.counts.values())
    print(json.dumps({"compile_s": time.perf_counter() - t0, "n_in": n_in, "n_records": n_records,
                      "balanced": r.balanced, "buckets": r.settings["buckets"]}))
"""

TOKENIZE = """
import json, sys, time
import pyarrow.parquet as pq
from pathlib import Path
from dataset_builder.tokens import token_counter
if __name__ == "__main__":
    counter, n, t = token_counter(), 0, 0.0
    for f in sorted(Path(sys.argv[1]).glob("data/*/*.parquet")):
        for batch in pq.ParquetFile(f).iter_batches(batch_size=64, columns=["context"]):
            contexts = batch.column("context").to_pylist()
            t0 = time.perf_counter()
            n += sum(counter.count_batch(contexts))
            t += time.perf_counter() - t0
    print(json.dumps({"tokenize_only_s": t, "context_tokens": n}))
"""


def paragraph_bank(seed: int, n: int = 4000) -> list[str]:
    import re

    words = sorted({w.lower() for f in sorted(CORPUS.glob("*.md")) for w in re.findall(r"[A-Za-z]{3,}", f.read_text())})
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(150)) for _ in range(n)]


def write_corpus(folder: Path, n: int, seed: int = 0) -> int:
    """n synthetic search runs as JSONL shards; returns the bytes written."""
    bank = paragraph_bank(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for shard in range(0, n, RUNS_PER_SHARD):
        lines = []
        for i in range(shard, min(n, shard + RUNS_PER_SHARD)):
            rng = random.Random(f"{seed}|{i}")
            question = f"In run {i}, which {' '.join(rng.sample(bank[i % len(bank)].split(), 3))} came first?"
            urls = [f"https://synthetic.example/{i}/{k}" for k in range(3)]
            pages = [f"# Page {i}.{k}\n\n" + "\n\n".join(rng.sample(bank, 10)) for k in range(3)]
            listing = "\n\n".join(f"{k}. [Page {i}.{k}]({u})\n{pages[k][:200]}" for k, u in enumerate(urls))
            messages = [
                {"role": "user", "content": question},
                _call("c0", "web_search", {"query": question}),
                {
                    "role": "tool",
                    "tool_call_id": "c0",
                    "name": "web_search",
                    "content": "## Search Results\n\n" + listing,
                },
            ]
            for k, (url, page) in enumerate(zip(urls, pages), start=1):
                messages.append(_call(f"c{k}", "visit_webpage", {"url": url}))
                messages.append({"role": "tool", "tool_call_id": f"c{k}", "name": "visit_webpage", "content": page})
            messages.append({"role": "assistant", "content": f"The answer is item {i}."})
            row = {
                "id": f"syn-{i}",
                "domain": "search",
                "question": question,
                "answer": f"item {i}",
                "messages": messages,
            }
            lines.append(json.dumps(row))
        text = "\n".join(lines) + "\n"
        (folder / f"runs-{shard // RUNS_PER_SHARD:05d}.jsonl").write_text(text)
        total += len(text.encode())
    return total


def _call(call_id: str, name: str, args: dict) -> dict:
    fn = {"name": name, "arguments": json.dumps(args)}
    return {"role": "assistant", "content": "", "tool_calls": [{"id": call_id, "type": "function", "function": fn}]}


def run_measured(argv: list[str]) -> tuple[dict, int, int]:
    """Run a Python child; (its last JSON line, peak RSS and peak PSS in bytes of its whole process tree; PSS is 0
    where the system does not report it)."""
    import psutil

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = peak_pss = 0
    done = threading.Event()

    def pss(p) -> int:
        try:
            return getattr(p.memory_full_info(), "pss", 0)
        except (psutil.AccessDenied, AttributeError):
            return 0

    def sample():
        nonlocal peak, peak_pss
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [p for p in [root, *root.children(recursive=True)] if p.is_running()]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
                peak_pss = max(peak_pss, sum(pss(p) for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{argv[:3]} failed with exit code {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1]), peak, peak_pss


def measure(sizes: list[int], workers: int, budgets: list[str]) -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="acc-scale-") as tmp:
        scripts = Path(tmp)
        (scripts / "compile_run.py").write_text(COMPILE)
        (scripts / "tokenize_run.py").write_text(TOKENIZE)
        for size in sizes:
            corpus = scripts / f"corpus-{size}"
            t0 = time.perf_counter()
            nbytes = write_corpus(corpus, size)
            gen_s = time.perf_counter() - t0
            for w in [1, workers] if size == min(sizes) and workers > 1 else [workers]:
                out = scripts / f"out-{size}-{w}"
                res, peak, peak_pss = run_measured(
                    [sys.executable, str(scripts / "compile_run.py"), str(corpus), str(out), str(w), *budgets]
                )
                tok, *_ = run_measured([sys.executable, str(scripts / "tokenize_run.py"), str(out)])
                row = {
                    "trajectories": size,
                    "input_mb": round(nbytes / 1e6),
                    "generate_s": round(gen_s, 1),
                    "workers": w,
                    **res,
                    "peak_rss_mb": round(peak / 2**20),
                    "peak_pss_mb": round(peak_pss / 2**20),
                    "trajectories_per_s": round(res["n_in"] / res["compile_s"], 1),
                    "tokens_per_s": round(tok["context_tokens"] / res["compile_s"]),
                    "context_tokens": tok["context_tokens"],
                    "tokenize_only_s": round(tok["tokenize_only_s"], 1),
                    "compile_over_tokenize": round(res["compile_s"] / tok["tokenize_only_s"], 2),
                }
                row["compile_s"] = round(row["compile_s"], 1)
                rows.append(row)
                print(json.dumps(row), flush=True)
                import shutil

                shutil.rmtree(out, ignore_errors=True)
            import shutil

            shutil.rmtree(corpus, ignore_errors=True)
    main_rows = [r for r in rows if r["workers"] == workers]
    small, large = main_rows[0], main_rows[-1]
    one = next((r for r in rows if r["workers"] == 1 and r["trajectories"] == small["trajectories"]), None)
    summary = {
        "summary": "scale",
        "sizes": sizes,
        "workers": workers,
        "peak_rss_mb": {r["trajectories"]: r["peak_rss_mb"] for r in main_rows},
        "peak_pss_mb": {r["trajectories"]: r["peak_pss_mb"] for r in main_rows},
        "rss_largest_over_smallest": round(large["peak_rss_mb"] / small["peak_rss_mb"], 2),
        "trajectories_per_s": {r["trajectories"]: r["trajectories_per_s"] for r in main_rows},
        "compile_over_tokenize": {r["trajectories"]: r["compile_over_tokenize"] for r in main_rows},
        "speedup_workers_over_1": round(one["compile_s"] / small["compile_s"], 2) if one and one is not small else None,
    }
    print(json.dumps(summary), flush=True)
    return 0
