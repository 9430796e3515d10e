"""Evaluate one or more models on OpenAI MRCR and GraphWalks (and general benchmarks through a harness); write one
report comparing every model (JSON + markdown, the ACC paper's published numbers as reference rows), plots (score vs
context, one line per model; overall scores) and, with --model-card, each model's results into its card.

examples:
  acc eval outputs/qwen3-acc --benchmarks mrcr,graphwalks --backend vllm --tensor-parallel-size 8
  acc eval Qwen/Qwen3-30B-A3B-Thinking-2507 outputs/qwen3-acc --max-context 131072 --backend vllm
  acc eval base/ acc/ agent-sft/ --names base,acc,agent-sft --model-card      # each local checkpoint's card
  acc eval --merge eval/node1 eval/node2 --out eval/all --model-card         # one report from several runs
  acc eval my-model --backend openai --base-url http://localhost:8000/v1      # any OpenAI-compatible server
  acc eval outputs/tiny --data generated --n 2 --lengths 1500,3000 --max-new-tokens 16   # CPU smoke test
  acc eval outputs/qwen3-acc --benchmarks gpqa,mmlu-pro,aime,ifeval --run-harness       # through lighteval

--data auto (default) uses the Hub when reachable and the offline generators otherwise (said loudly, and recorded
in every report); --data hub fails instead; --data PATH reads parquet files with the published columns.
Responses are cached in OUT/cache.sqlite: rerunning the same command after a crash generates only what is missing.
The first model is the baseline: the comparison table shows every other model's difference from it.
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
EVERY_LOCAL = "__every_local_checkpoint__"  # --model-card given without a path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "models",
        nargs="*",
        help="checkpoint dirs, Hub ids, or served model names (--backend openai); the first is the baseline",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="RUN",
        help="instead of evaluating: one report from earlier `acc eval --out` folders (or their results.json), models "
        "in the order given; the runs must have evaluated the same prompts. One folder re-renders its report",
    )
    parser.add_argument(
        "--allow-different-data",
        action="store_true",
        help="with --merge: merge runs whose data settings differ (the report lists the differences)",
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="leave out the ACC paper's published numbers (shown by default as labelled reference rows)",
    )
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
    parser.add_argument("--names", help="comma list of display names, one per model (or merged model), used everywhere")
    parser.add_argument("--out", default="eval_results", help="output directory (default eval_results)")
    parser.add_argument("--cache", help="response cache (default OUT/cache.sqlite)")
    parser.add_argument(
        "--model-card",
        nargs="?",
        const=EVERY_LOCAL,
        metavar="PATH",
        help="write each model's results (model-index) and the comparison table into the card of every model that "
        "is a local checkpoint folder (Hub ids and served names are skipped, and said so); with PATH (a checkpoint "
        "dir or README.md), the last model's results also go there",
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
    from acc_hf.eval import compare, report
    from acc_hf.eval.data import DataUnavailable

    try:
        if args.merge:
            if args.models:
                raise ValueError("give models to evaluate or --merge RUN..., not both")
            if any(Path(r).resolve() in (Path(args.out).resolve(), Path(args.out).resolve() / "results.json") for r in args.merge):  # fmt: skip
                raise ValueError("--out must be a new folder: it would overwrite a merged run's results.json")
            names = _csv(args.names) if args.names else None
            results = compare.merge(args.merge, names, allow_different_data=args.allow_different_data)
        else:
            results = evaluate(args)
        results["reference"] = None if args.no_reference else compare.PUBLISHED
        paths = report.write_reports(results, args.out)
        print(report.markdown(results))
        print(f"\n[acc eval] wrote {', '.join(str(p) for p in paths.values())}")
        if args.model_card:
            write_cards(results, args.model_card)
    except (DataUnavailable, ValueError, RuntimeError, OSError) as e:
        print(f"acc eval: error: {e}", file=sys.stderr)
        return 1
    return 0


def evaluate(args) -> dict:
    """Run the long-context benchmarks and the harness for every model: the results dict of the report."""
    if not args.models:
        raise ValueError("give at least one model to evaluate (or --merge RUN...)")
    wanted = _csv(args.benchmarks)
    unknown = [b for b in wanted if b not in LONG_CONTEXT and b != "general" and b not in harness.TASKS]
    if unknown:
        choices = ", ".join([*LONG_CONTEXT, *harness.TASKS, "general"])
        raise ValueError(f"unknown benchmark(s) {unknown}: choose from {choices}")
    names = display_names(args.models, args.names)
    results = {"models": {}, "data": {}, "settings": {k: getattr(args, k) for k in SETTINGS}}
    if any(b in wanted for b in LONG_CONTEXT):
        run_long_context(args, [b for b in LONG_CONTEXT if b in wanted], names, results)
    if general := harness.expand(wanted):
        run_general(args, general, names, results)
    return results


def write_cards(results: dict, model_card: str) -> list[Path]:
    """Each local checkpoint folder's card gets its own results and the comparison table; with a PATH, the last
    model's results also go there (its checkpoint may be a Hub id or a served name). Says what was skipped."""
    from acc_hf.eval import report

    written, skipped = [], []
    for name, m in results["models"].items():
        folder = Path(m["model"])
        if not _is_checkpoint(folder):
            skipped.append(f"{name} ({m['model']}: not a local checkpoint folder)")
            continue
        entries = report.model_results(m, results["data"])
        written.append(report.write_model_card(folder, entries, report.card_comparison(results, name)))
        print(f"[acc eval] results of {name} written into {written[-1]}")
    if model_card != EVERY_LOCAL:
        last = list(results["models"])[-1]
        target = Path(model_card)
        target_dir = target.parent if target.suffix == ".md" else target
        if all(target_dir.resolve() != w.parent.resolve() for w in written):
            entries = report.model_results(results["models"][last], results["data"])
            written.append(report.write_model_card(target, entries, report.card_comparison(results, last)))
            print(f"[acc eval] results of {last} (the last model) written into {written[-1]}")
            skipped = [s for s in skipped if not s.startswith(f"{last} (")]
    if skipped:
        print(f"[acc eval] no model card written for: {'; '.join(skipped)} (give --model-card PATH for the last model)")
    return written


def _is_checkpoint(folder: Path) -> bool:
    markers = ("config.json", "adapter_config.json", "README.md", "acc_card.json")
    return folder.is_dir() and any((folder / m).is_file() for m in markers)


def run_long_context(args, benches: list[str], names: list[str], results: dict) -> dict:
    from acc_hf.eval import report
    from acc_hf.eval.backends import GenerationParams, ResponseCache
    from acc_hf.eval.data import counter_for

    params = GenerationParams(args.max_new_tokens, args.temperature, json.loads(args.chat_template_kwargs))
    out = Path(args.out)
    counter = counter_for(args.models, args.tokenizer)
    sets = load_sets(args, benches, counter)
    results["settings"]["tokenizer"] = counter.name
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
    return results


def run_general(args, benchmarks: list[str], names: list[str], results: dict) -> dict:
    out = Path(args.out)
    options = dict(backend=args.backend, tensor_parallel_size=args.tensor_parallel_size, base_url=args.base_url)
    outcomes = {
        name: harness.run_or_print(
            model, benchmarks, args.harness, out / "harness" / _slug(name), execute=args.run_harness, **options
        )
        for name, model in zip(names, args.models)
    }
    for name, model in zip(names, args.models):
        entry = results["models"].setdefault(name, {"model": model, "backend": args.backend, "summary": {}})
        entry["general"] = outcomes[name]
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
