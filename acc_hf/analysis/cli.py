"""`acc analyze`: attention span and expert specialization of one checkpoint, or of two compared (base vs trained).

    acc analyze attention BASE [TRAINED] --data ACC_DIR [--config all] [--n 8] [--max-tokens 4096]
                          [--heads 4] [--far 1024 4096] [--queries answer|all] --out DIR
    acc analyze experts   BASE [TRAINED] --data ACC_DIR [--config all] [--n 8] [--max-tokens 4096] --out DIR

--data is an ACC dataset directory (parquet + card; read with `load_dataset(DIR, CONFIG)`) or a parquet file.
Up to --n records per domain are taken in dataset order; records longer than --max-tokens (chat-templated prompt +
completion under the model's tokenizer) are skipped and listed with the reason. Both checkpoints see the same records.

Writes into --out: `attention.json` / `experts.json` (every number), PNG plots, and `analysis.md`, a markdown section
for the model card built from whichever of the two JSON files are there (run both analyses into one folder).
"""

from __future__ import annotations

import argparse
import gc
import os
from collections import Counter
from pathlib import Path

from dataset_builder.schema import DOMAINS

MAX_LISTED_SKIPS = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    helps = {
        "attention": "attention mass by distance and by token role, per layer and sampled head",
        "experts": "expert routing per domain and token role, specialization (mutual information), change",
    }
    for name, help_text in helps.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("models", nargs="+", metavar="MODEL", help="one checkpoint, or two to compare (base, trained)")
        p.add_argument("--data", required=True, help="ACC dataset directory or parquet file")
        p.add_argument("--config", default="all", help="dataset config: all, search, swe or sql (default: all)")
        p.add_argument("--n", type=int, default=8, help="records per domain (default: 8)")
        p.add_argument("--max-tokens", type=int, default=4096, help="skip longer records (default: 4096)")
        p.add_argument("--out", required=True, help="output directory")
        p.add_argument("--labels", nargs="+", help="names of the models in plots and tables (default: folder names)")
        p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
        p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
        if name == "attention":
            p.add_argument("--heads", type=int, default=4, help="heads sampled per layer, evenly spaced (0: all)")
            p.add_argument("--far", type=int, nargs="+", default=[1024], help="distances N for the mass beyond N")
            p.add_argument("--queries", choices=["answer", "all"], default="answer", help="query positions")
            p.add_argument("--chunk", type=int, default=256, help="query positions per softmax chunk")


def run(args: argparse.Namespace) -> int:
    if len(args.models) > 2:
        print("acc analyze: give one model, or two to compare")
        return 2
    labels = model_labels(args.models, args.labels)
    if labels is None:
        print(f"acc analyze: --labels needs one name per model ({len(args.models)})")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        rows, data_info = select_records(args.data, args.config, args.n, args.max_tokens, args.models[0])
    except (FileNotFoundError, ValueError) as exc:
        print(f"acc analyze: cannot read --data {args.data}: {exc}")
        return 1
    if not rows:
        print(f"acc analyze: no usable record in {args.data} ({data_info['skipped_reasons'] or 'empty'})")
        return 1
    print(f"acc analyze {args.analysis}: {len(rows)} records {data_info['used']}, {data_info['n_skipped']} skipped")
    if args.analysis == "attention":
        from acc_hf.analysis.report import write_attention

        results = {label: analyze_attention(path, label, rows, args) for path, label in zip(args.models, labels)}
        write_attention(out, results, data_info, vars_for_json(args))
    else:
        from acc_hf.analysis.report import write_experts

        present = {row["domain"] for row in rows}
        domains = [d for d in DOMAINS if d in present] + sorted(present - set(DOMAINS))
        results = {label: analyze_experts(path, label, rows, domains, args) for path, label in zip(args.models, labels)}
        write_experts(out, results, data_info, vars_for_json(args))
    from acc_hf.analysis.report import write_markdown

    write_markdown(out)
    print(f"wrote {out}/{args.analysis}.json, plots and {out}/analysis.md")
    return 0


def model_labels(models: list[str], labels: list[str] | None) -> list[str] | None:
    if labels:
        return labels if len(labels) == len(models) else None
    names = [Path(m).name or str(m) for m in models]
    if len(set(names)) < len(names):
        names = [f"{name}-{i + 1}" for i, name in enumerate(names)]
    return names


def vars_for_json(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if not k.startswith("_") and k != "command"}


def load_rows(data: str, config: str):
    """The ACC rows of a dataset directory (by config) or of a parquet file."""
    from datasets import load_dataset

    path = Path(data)
    if path.is_file():
        if path.suffix != ".parquet":
            raise ValueError("a data file must be .parquet (or give the dataset directory)")
        return load_dataset("parquet", data_files=str(path), split="train")
    if not path.is_dir():
        raise FileNotFoundError(f"{data} does not exist")
    from dataset_builder.load import load_acc_split

    return load_acc_split(str(path), config, split="train")


def select_records(data: str, config: str, n: int, max_tokens: int, model_path: str) -> tuple[list[dict], dict]:
    """Up to ``n`` usable records per domain, in dataset order. Each record looked at is used or skipped with a reason;
    only the ``domain`` and ``n_tokens`` columns are read for the others."""
    from acc_hf.analysis.roles import label_record

    tokenizer = load_tokenizer(model_path)
    rows = load_rows(data, config)
    missing = {"prompt", "completion", "pieces", "question", "domain"} - set(rows.column_names)
    if missing:
        raise ValueError(f"not ACC records: columns {sorted(missing)} are missing")
    by_domain: dict[str, list[int]] = {}
    for index, domain in enumerate(rows["domain"]):
        by_domain.setdefault(domain, []).append(index)
    context_tokens = rows["n_tokens"] if "n_tokens" in rows.column_names else [0] * len(rows)
    chosen: list[dict] = []
    used: Counter = Counter()
    skipped: list[dict] = []
    unlocated = 0
    for domain, indices in by_domain.items():
        for index in indices:
            if used[domain] >= n:
                break
            # the context alone is over (in the dataset's tokenizer): skip without reading the row
            if context_tokens[index] and context_tokens[index] > max_tokens:
                skipped.append({"index": index, "reason": "longer than --max-tokens", "tokens": context_tokens[index]})
                continue
            row = rows[index]
            try:
                sample = label_record(row, tokenizer)
            except ValueError as exc:
                skipped.append({"index": index, "id": row["id"], "reason": f"unusable record: {exc}"})
                continue
            if len(sample) > max_tokens:
                skipped.append(
                    {"index": index, "id": row["id"], "reason": "longer than --max-tokens", "tokens": len(sample)}
                )
                continue
            unlocated += sample.missing_pieces > 0
            chosen.append(row)
            used[domain] += 1
    info = {
        "source": str(data),
        "config": config,
        "n_rows": len(rows),
        "n_examined": len(chosen) + len(skipped),
        "used": dict(used),
        "n_skipped": len(skipped),
        "skipped_reasons": dict(Counter(s["reason"] for s in skipped)),
        "skipped": skipped[:MAX_LISTED_SKIPS],
        "records_with_unlocated_pieces": unlocated,
    }
    return chosen, info


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def load_model(path: str, device: str | None, dtype: str):
    import torch
    from transformers import AutoModelForCausalLM

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    return model.to(device).eval()


def _label(rows: list[dict], path: str):
    """Token roles under this model's tokenizer (the same records for every model, whatever their length here)."""
    from acc_hf.analysis.roles import label_record

    tokenizer = load_tokenizer(path)
    return [label_record(row, tokenizer) for row in rows]


def _release(model) -> None:
    import torch

    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def analyze_attention(path: str, label: str, rows: list[dict], args) -> dict:
    from tqdm.auto import tqdm

    from acc_hf.analysis.attention import attention_stats

    samples = _label(rows, path)
    model = load_model(path, args.device, args.dtype)
    with tqdm(total=len(samples), desc=f"attention {label}", disable=None) as bar:
        stats = attention_stats(
            model, samples, heads=args.heads or None, far=args.far, queries=args.queries, chunk=args.chunk, progress=bar
        )
    _release(model)
    return {"path": os.fspath(path), **stats.summary()}


def analyze_experts(path: str, label: str, rows: list[dict], domains: list[str], args) -> dict:
    from tqdm.auto import tqdm

    from acc_hf.analysis.experts import expert_counts, specialization

    samples = _label(rows, path)
    model = load_model(path, args.device, args.dtype)
    with tqdm(total=len(samples), desc=f"experts {label}", disable=None) as bar:
        counts = expert_counts(model, samples, domains, progress=bar)
    _release(model)
    return {"path": os.fspath(path), **specialization(counts)}
