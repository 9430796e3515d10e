"""Evaluate one or more models on OpenAI MRCR and GraphWalks; write JSON + markdown reports, a score-vs-context
plot (one line per model) and, with --model-card, the results into a model card's `model-index`.

examples:
  acc eval outputs/qwen3-acc --benchmarks mrcr,graphwalks --backend vllm --tensor-parallel-size 8
  acc eval Qwen/Qwen3-30B-A3B-Thinking-2507 outputs/qwen3-acc --max-context 131072 --backend vllm
  acc eval my-model --backend openai --base-url http://localhost:8000/v1      # any OpenAI-compatible server
  acc eval outputs/tiny --data generated --n 2 --lengths 1500,3000 --max-new-tokens 16   # CPU smoke test
  acc eval outputs/qwen3-acc --benchmarks gpqa,mmlu-pro,aime,ifeval --run-harness       # through lighteval

--data auto (default) uses the Hub when reachable and the offline generators otherwise (said loudly, and recorded
in every report); --data hub fails instead; --data PATH reads parquet files with the published columns.
Responses are cached in OUT/cache.sqlite: rerunning the same command after a crash generates only what is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from acc_hf.eval import harness
from dataset_builder.budget import MAX_LENGTH

LONG_CONTEXT = ("mrcr", "graphwalks")
# --max-context counts message contents (as the MRCR card does); the chat template adds a few tokens per message,
# hundreds of messages in a long MRCR prompt, which vLLM's max_model_len must leave room for.
CHAT_TEMPLATE_MARGIN = 4096


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", help="checkpoint dirs, Hub ids, or served model names (--backend openai)")
    parser.add_argument(
        "--benchmarks",
        default="mrcr,graphwalks",
        help=f"comma list: mrcr, graphwalks, and general-capability ones through a harness: {', '.join(harness.TASKS)} (or 'general')",
    )
    parser.add_argument("--data", default="auto", help="auto | hub | generated | PATH of parquet files (default auto)")
    parser.add_argument("--revision", help="Hub dataset revision (commit) for --data hub/auto")
    parser.add_argument(
        "--n",
        type=int,
        help="at most N prompts per (needle count or problem type, bin); generated sets: N per (group, length) (default 3)",
    )
    parser.add_argument(
        "--max-context",
        type=int,
        default=MAX_LENGTH,
        help=f"drop prompts longer than this many tokens (default {MAX_LENGTH}, the window ACC trains)",
    )
    parser.add_argument("--needles", default="2,4,8", help="MRCR needle counts (default 2,4,8)")
    parser.add_argument("--problem-types", default="bfs,parents", help="GraphWalks problem types (default bfs,parents)")
    parser.add_argument(
        "--lengths",
        help="generated sets: comma list of prompt-token targets (default: 4096, 8192, ... up to --max-context)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer", help="tokenizer for bins and --max-context (default: the first model's)")
    parser.add_argument("--backend", default="transformers", choices=["transformers", "vllm", "openai", "reference"])
    parser.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://localhost:8000/v1")
    parser.add_argument("--api-key", help="for --backend openai (default: $OPENAI_API_KEY)")
    parser.add_argument("--concurrency", type=int, default=8, help="parallel requests for --backend openai")
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="for --backend vllm")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per generation batch (and per cache commit)")
    parser.add_argument("--device", help="transformers: cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--dtype", default="auto", help="transformers: auto (bf16 on GPU, fp32 on CPU), bfloat16, ...")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--max-new-tokens", type=int, default=4096, help="thinking models need far more, e.g. 32768")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    parser.add_argument("--chat-template-kwargs", default="{}", help="JSON, e.g. '{\"enable_thinking\": false}'")
    parser.add_argument("--names", help="comma list of display names, one per model")
    parser.add_argument("--out", default="eval_results", help="output directory (default eval_results)")
    parser.add_argument("--cache", help="response cache (default OUT/cache.sqlite)")
    parser.add_argument(
        "--model-card", help="checkpoint dir or README.md whose model-index gets the results of the last model"
    )
    parser.add_argument(
        "--harness", default="lighteval", choices=["lighteval", "lm-eval"], help="for general benchmarks"
    )
    parser.add_argument("--run-harness", action="store_true", help="run the harness command (else it is printed)")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def display_names(models: list[str], names: str | None) -> list[str]:
    if names:
        out = _csv(names)
        if len(out) != len(models):
            raise ValueError(f"--names has {len(out)} names for {len(models)} models")
        return out
    short = [Path(m.rstrip("/")).name or m for m in models]
    return short if len(set(short)) == len(short) else models


def load_sets(args, benches: list[str], counter) -> dict:
    from acc_hf.eval import data

    needles, types = [int(x) for x in _csv(args.needles)], _csv(args.problem_types)
    local = data.load_local(args.data) if args.data not in ("auto", "hub", "generated") else None
    sets = {}
    for bench in benches:
        rows = None
        if local is not None:
            if bench not in local:
                raise data.DataUnavailable(f"{args.data} holds no {bench} rows (files are assigned by their columns)")
            (rows, source), kind, dataset = local[bench], "local", str(args.data)
        elif args.data in ("auto", "hub"):
            try:
                rows, source = data.load_hub(bench, needles, args.max_context, args.revision)
                kind, dataset = "hub", data.HUB_REPOS[bench]
            except data.DataUnavailable as e:
                if args.data == "hub":
                    raise data.DataUnavailable(f"{e}. Use --data generated, or --data PATH with parquet files") from e
                print(
                    f"[acc eval] {e}\n[acc eval] using GENERATED {bench} data instead: scores are not comparable with published numbers"
                )
        generated = rows is None
        if generated:
            lengths = [int(x) for x in _csv(args.lengths)] if args.lengths else data.default_lengths(args.max_context)
            rows, source = data.generate(bench, args.n or 3, lengths, needles, types, args.seed, counter)
            kind, dataset = "generated", f"acc-hf/generated-{bench}"
        es = data.make_set(
            bench,
            rows,
            source,
            counter,
            max_context=args.max_context,
            needles=needles,
            problem_types=types,
            n=None if generated else args.n,
            seed=args.seed,
        )
        es.kind, es.dataset = kind, dataset
        sets[bench] = es
        print(
            f"[acc eval] {bench}: {es.n_rows} rows from {source} = {len(es.items)} prompts + {len(es.skipped)} "
            f"skipped + {es.filtered} filtered out" + ("" if es.balanced else " (UNBALANCED: a bug)")
        )
    return sets


def evaluate_model(args, model: str, sets: dict, cache, params) -> tuple[list[dict], dict]:
    from acc_hf.eval import graphwalks
    from acc_hf.eval.backends import generate_all, make_backend, model_fingerprint
    from acc_hf.eval.data import grade_item

    backend = make_backend(
        args.backend,
        model,
        base_url=args.base_url,
        api_key=args.api_key,
        tensor_parallel_size=args.tensor_parallel_size,
        max_model_len=args.max_context + args.max_new_tokens + CHAT_TEMPLATE_MARGIN,
        concurrency=args.concurrency,
        device=args.device,
        dtype=args.dtype,
        trust_remote_code=args.trust_remote_code,
    )
    model_id = model_fingerprint(model) if args.backend != "openai" else f"{args.base_url}#{model}"
    records, counts = [], {"generated": 0, "cached": 0, "grading_skipped": []}
    try:
        for bench, es in sets.items():
            responses, n_new = generate_all(
                backend,
                model_id,
                [it.messages for it in es.items],
                params,
                cache,
                args.batch_size,
                desc=f"{Path(model).name} {bench}",
            )
            counts["generated"] += n_new
            counts["cached"] += len(responses) - n_new
            for item, response in zip(es.items, responses):
                rec = {
                    "benchmark": bench,
                    "id": item.id,
                    "group": item.group,
                    "bin": item.bin,
                    "n_tokens": item.n_tokens,
                }
                try:
                    rec["score"] = grade_item(item, response)
                    if bench == "graphwalks":
                        rec["score_official_parser"] = graphwalks.score_official_parser(
                            response, item.reference["answer_nodes"]
                        )
                except Exception as e:  # noqa: BLE001 - one row the grader cannot read is that row's skip
                    counts["grading_skipped"].append(
                        {"id": item.id, "reason": f"grading failed: {type(e).__name__}: {e}"}
                    )
                    continue
                records.append({**rec, "response": response, "reference": item.reference})
    finally:
        backend.close()
    return records, counts


def run(args) -> int:
    from acc_hf.eval.data import DataUnavailable

    try:
        wanted = _csv(args.benchmarks)
        unknown = [b for b in wanted if b not in LONG_CONTEXT and b != "general" and b not in harness.TASKS]
        if unknown:
            choices = ", ".join([*LONG_CONTEXT, *harness.TASKS, "general"])
            raise ValueError(f"unknown benchmark(s) {unknown}: choose from {choices}")
        names = display_names(args.models, args.names)
        if any(b in wanted for b in LONG_CONTEXT):
            run_long_context(args, [b for b in LONG_CONTEXT if b in wanted], names)
        if general := harness.expand(wanted):
            run_general(args, general, names)
    except (DataUnavailable, ValueError, RuntimeError, OSError) as e:
        print(f"acc eval: error: {e}", file=sys.stderr)
        return 1
    return 0


def run_long_context(args, benches: list[str], names: list[str]) -> dict:
    from acc_hf.eval import report
    from acc_hf.eval.backends import GenerationParams, ResponseCache
    from acc_hf.eval.data import counter_for

    params = GenerationParams(args.max_new_tokens, args.temperature, json.loads(args.chat_template_kwargs))
    out = Path(args.out)
    counter = counter_for(args.models, args.tokenizer)
    sets = load_sets(args, benches, counter)
    settings = {k: getattr(args, k) for k in SETTINGS}
    results = {"models": {}, "data": {}, "settings": {**settings, "tokenizer": counter.name}}
    for bench, s in sets.items():
        results["data"][bench] = {"source": s.source, "kind": s.kind, "dataset": s.dataset, "n_items": len(s.items)}
        results["data"][bench].update(skipped=s.skipped, filtered=s.filtered, n_rows=s.n_rows, balanced=s.balanced)
    cache = ResponseCache(args.cache or out / "cache.sqlite")
    try:
        for name, model in zip(names, args.models):
            records, counts = evaluate_model(args, model, sets, cache, params)
            _write_responses(out / "responses" / f"{_slug(name)}.jsonl", records)
            summary = report.summarize(records)
            results["models"][name] = {"model": model, "backend": args.backend, "summary": summary, **counts}
            print(f"[acc eval] {name}: {counts['generated']} generated, {counts['cached']} from the cache")
    finally:
        cache.close()
    paths = report.write_reports(results, out)
    print(report.markdown(results))
    print(f"\n[acc eval] wrote {', '.join(str(p) for p in paths.values())}")
    if args.model_card:
        last = names[-1]
        entries = report.eval_results(results["models"][last]["summary"], results["data"])
        print(f"[acc eval] model-index of {last} written into {report.write_model_card(args.model_card, entries)}")
    return results


def run_general(args, benchmarks: list[str], names: list[str]) -> dict:
    out = Path(args.out)
    options = dict(backend=args.backend, tensor_parallel_size=args.tensor_parallel_size, base_url=args.base_url)
    outcomes = {
        name: harness.run_or_print(
            model, benchmarks, args.harness, out / "harness" / _slug(name), execute=args.run_harness, **options
        )
        for name, model in zip(names, args.models)
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "harness.json").write_text(json.dumps(outcomes, indent=2) + "\n")
    return outcomes


SETTINGS = (
    "benchmarks data revision n max_context needles problem_types lengths seed backend base_url batch_size "
    "max_new_tokens temperature chat_template_kwargs"
).split()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def _write_responses(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
