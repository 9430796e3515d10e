"""The Hub model card of an ACC checkpoint: `README.md` with YAML front matter (base_model, datasets, tags,
library_name, license, and `model-index` when evaluation results are given) and a body with the training settings,
the ACC data used (including the samples dropped for being longer than `max_length`), the MoE router summary and
heatmap, and the evaluation table.

The trainer writes the card when it saves or pushes. Everything it knows is also kept in `acc_card.json` beside the
card, so that evaluation can add its results later without the trainer:

    write_model_card("outputs/qwen3-acc", eval_results=[
        {"task": "MRCR", "dataset": "openai/mrcr", "metric": "score", "value": 68.3, "config": "8 needles"},
        {"task": "GraphWalks", "dataset": "openai/graphwalks", "metric": "f1", "value": 77.5, "split": "train"},
    ])

`eval_results`: a list of dicts with `task` (benchmark name), `dataset` (Hub id or name), `metric` (type, e.g.
"score", "f1", "accuracy"), `value` (number, as it should be displayed, e.g. percent) and optionally `config`,
`split`, `metric_name` (display name) and `task_type` (defaults to "text-generation"). Front matter is built with
`huggingface_hub.ModelCardData`, so the `model-index` is exactly what the Hub parses.

The front matter holds only what the Hub accepts: `base_model` and `datasets` are Hub ids (a local path stays in the
card's text, not in its metadata). A PEFT adapter (`adapter` in the context) is a `library_name: peft` card whose
usage loads the adapter onto its base model.
"""

from __future__ import annotations

import json
import numbers
import re
from pathlib import Path
from typing import Any

CARD_TEMPLATE = "model_card.md.j2"
COMPARISON_HEADING = "## Comparison with other checkpoints"
CONTEXT_FILE = "acc_card.json"
REQUIRED_RESULT_KEYS = ("task", "dataset", "metric", "value")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def hub_id(name: str | None) -> str | None:
    """`name` when it can be a Hub repo id ("org/name" or a bare canonical name), None for a local path or URL."""
    if not name or Path(name).exists() or not HUB_ID.fullmatch(name) or ".." in name:
        return None
    return name


def check_eval_results(eval_results: list[dict] | None) -> list[dict]:
    """Validate the `eval_results` shape; a clear ValueError names the bad entry."""
    checked = []
    for i, result in enumerate(eval_results or []):
        if not isinstance(result, dict):
            raise ValueError(f"eval_results[{i}] must be a dict, got {type(result).__name__}")
        missing = [key for key in REQUIRED_RESULT_KEYS if result.get(key) in (None, "")]
        if missing:
            raise ValueError(f"eval_results[{i}] lacks {missing} (needs {list(REQUIRED_RESULT_KEYS)})")
        if isinstance(result["value"], bool) or not isinstance(result["value"], numbers.Real):
            raise ValueError(f"eval_results[{i}]['value'] must be a number, got {result['value']!r}")
        optional = {"config": None, "split": None, "metric_name": None, "dataset_name": None, "task_type": None}
        checked.append({**optional, **result, "value": float(result["value"])})
    return checked


def card_data(context: dict[str, Any]):
    """`huggingface_hub.ModelCardData` for the front matter."""
    from huggingface_hub import EvalResult, ModelCardData

    results = [
        EvalResult(
            task_type=r.get("task_type") or "text-generation",
            task_name=r["task"],
            dataset_type=r["dataset"],
            dataset_name=r.get("dataset_name") or r["task"],
            dataset_config=r.get("config"),
            dataset_split=r.get("split"),
            metric_type=r["metric"],
            metric_name=r.get("metric_name") or r["metric"],
            metric_value=r["value"],
        )
        for r in context.get("eval_results") or []
    ]
    adapter = context.get("adapter")
    tags = list(context.get("tags") or [])
    if adapter:
        tags += [t for t in ("peft", str(adapter.get("method", "")).lower()) if t and t not in tags]
    return ModelCardData(
        base_model=hub_id(context.get("base_model")),
        datasets=[d for d in context.get("datasets") or [] if hub_id(d)] or None,
        library_name="peft" if adapter else "transformers",
        license=context.get("license") or None,
        pipeline_tag="text-generation",
        tags=tags or None,
        model_name=context["model_name"],
        eval_results=results or None,
    )


def render_model_card(context: dict[str, Any]) -> str:
    from model_cards import render

    context = dict(context)
    context["eval_results"] = check_eval_results(context.get("eval_results"))
    front_matter = card_data(context).to_yaml()
    defaults = {
        "adapter": None,
        "base_model": None,
        "datasets": [],
        "acc_configs": None,
        "data": {},
        "training": {},
        "kernels": None,
        "router": None,
        "heatmap": None,
        "license": None,
        "repo_id": None,
    }
    context["base_model_id"] = hub_id(context.get("base_model"))
    card = render(CARD_TEMPLATE, **{**defaults, **context, "front_matter": front_matter})
    return with_comparison(card, context.get("comparison"))


def with_comparison(card: str, comparison: str | None) -> str:
    """The card with `acc eval`'s comparison table (markdown) as its own section, before the usage section (at the
    end when the card has none)."""
    if not comparison:
        return card
    section = f"{COMPARISON_HEADING}\n\n{comparison.strip()}\n\n"
    at = card.find("\n## Usage")
    return card.rstrip("\n") + "\n\n" + section if at < 0 else card[: at + 1] + section + card[at + 1 :]


def write_model_card(output_dir: str | Path, eval_results: list[dict] | None = None, **context: Any) -> Path:
    """Write `output_dir/README.md`, merging `context` (and `eval_results`, when given) into what `acc_card.json`
    already holds; returns the card's path. Keys: model_name, base_model, datasets, acc_configs, license, tags,
    data (per-split data statistics), training (settings), kernels (one line), router (summary), heatmap (path
    relative to the card), adapter (PEFT: method, r, alpha, target_modules, trainable, total), eval_results,
    comparison (markdown: `acc eval`'s table of this model beside the others, a section of its own)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stored = {}
    if (out / CONTEXT_FILE).is_file():
        stored = json.loads((out / CONTEXT_FILE).read_text())
    merged = {**stored, **{k: v for k, v in context.items() if v is not None}}
    if eval_results is not None:
        merged["eval_results"] = check_eval_results(eval_results)
    merged.setdefault("model_name", out.resolve().name)
    card = render_model_card(merged)
    (out / CONTEXT_FILE).write_text(json.dumps(merged, indent=2, sort_keys=True, default=str) + "\n")
    (out / "README.md").write_text(card)
    return out / "README.md"
