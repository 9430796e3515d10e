"""Checkpoints side by side: the comparison table of `acc eval` (every model in one table, deltas against the first,
the ACC paper's published numbers as reference rows), general-benchmark scores read from the harness results, and
the merge of several `acc eval` output folders into one report.

results.json (what `acc eval` writes, and what `merge` reads) holds `models` ({name: {model, backend, summary,
general}}), `data` ({benchmark: where its prompts came from}) and `settings`; see acc_hf/eval/cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from acc_hf.eval import BIN_LABELS, harness

TITLES = {"mrcr": "MRCR", "graphwalks": "GraphWalks"}
GENERAL_TITLES = {"gpqa": "GPQA", "mmlu-pro": "MMLU-Pro", "aime": "AIME", "ifeval": "IFEval"}

# The only published numbers acc-hf has (do not add numbers that are not in the source).
PUBLISHED = {
    "source": "the ACC (Agent Context Compilation) paper, as quoted in acc-hf's DESIGN.md and issue #16",
    "rows": [
        {"name": "Qwen3-30B-A3B-Thinking-2507", "scores": {"mrcr": 50.2, "graphwalks": 69.9}},
        {"name": "Qwen3-30B-A3B-Thinking-2507 + ACC", "scores": {"mrcr": 68.3, "graphwalks": 77.5}},
    ],
    "note": "The paper reports the + ACC model on par with Qwen3-235B-A22B (no numbers for it are given here).",
}

# Settings that define which prompts a benchmark has: runs that differ in them do not compare.
DATA_SETTINGS = ("data", "revision", "n", "max_context", "needles", "problem_types", "lengths", "seed", "tokenizer")
DATA_FIELDS = ("source", "kind", "dataset", "n_items", "n_rows", "filtered")


def _group_order(group: str):
    return (0, int(group), "") if group.isdigit() else (1, 0, group)


def general_scores(outcome: dict | None) -> dict[str, dict]:
    """{benchmark: {score (x100), metric, task}} from a harness outcome whose command ran and left results.

    lighteval and lm-evaluation-harness both write `results: {task: {metric: value, metric_stderr: ...}}`; the first
    numeric metric of the task that is not a standard error is taken, and named in the report."""
    if not outcome or not outcome.get("results"):
        return {}
    results, out = outcome["results"], {}
    for bench in outcome.get("benchmarks", []):
        task = harness.TASKS[bench][outcome["harness"]]
        stem = task.rsplit("|", 1)[0] if "|" in task else task  # lighteval keys may drop or change the few-shot part
        key = task if task in results else next((k for k in results if k.startswith(stem)), None)
        metrics = results.get(key) if key else None
        if not isinstance(metrics, dict):
            continue
        for metric, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or "stderr" in metric:
                continue
            score = 100 * value if 0 <= value <= 1 else value
            out[bench] = {"score": round(float(score), 2), "metric": metric, "task": key}
            break
    return out


def columns(results: dict) -> list[tuple[str, str, callable]]:
    """(key, header, value(model) -> {"score", "n"} | None) for every column some model has a value in."""
    cols = []
    for bench, title in TITLES.items():
        summaries = [m["summary"][bench] for m in results["models"].values() if bench in (m.get("summary") or {})]
        if not summaries:
            continue
        cols.append((f"{bench}:le_128k", f"{title} <=128k", lambda m, b=bench: _get(m, b, "le_128k")))
        groups = sorted({g for s in summaries for g in s["groups"]}, key=_group_order)
        for g in groups:
            header = f"{title} {g} needles" if bench == "mrcr" else f"{title} {g}"
            cols.append((f"{bench}:{g}", header, lambda m, b=bench, g=g: _get(m, b, "le_128k_by_group", g)))
        for label in [b for b in BIN_LABELS if any(b in s["by_bin"] for s in summaries)]:
            cols.append((f"{bench}:{label}", f"{title} {label}", lambda m, b=bench, x=label: _get(m, b, "by_bin", x, "all")))  # fmt: skip
    for bench, title in GENERAL_TITLES.items():
        if any(bench in general_scores(m.get("general")) for m in results["models"].values()):
            cols.append((bench, title, lambda m, b=bench: general_scores(m.get("general")).get(b)))
    return cols


def _get(model: dict, bench: str, *keys):
    value = (model.get("summary") or {}).get(bench)
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _cell(value: dict | None, base: dict | None) -> str:
    if not value or value.get("n", 1) == 0 or value.get("score") is None:
        return "-"
    text = f"{value['score']:.1f}"
    if base is not None and base.get("n", 1) and base.get("score") is not None:
        text += f" ({value['score'] - base['score']:+.1f})"
    return text


def reference_rows(results: dict, cols: list) -> list[tuple[str, dict]]:
    """(label, {column key: value}) of the published rows, in the `<=128k` columns of this report; none when the
    report has neither MRCR nor GraphWalks, or when the reference is turned off."""
    reference = results.get("reference")
    keys = {key for key, _, _ in cols}
    if not reference or not any(f"{b}:le_128k" in keys for b in TITLES):
        return []
    return [
        (f"*published*: {row['name']}", {f"{b}:le_128k": {"score": v} for b, v in row["scores"].items()})
        for row in reference["rows"]
    ]


def comparison_table(results: dict) -> list[str]:
    """Markdown lines: one row per model (deltas against the first), then the published rows, then the notes."""
    models = results["models"]
    cols = columns(results)
    if not models or not cols:
        return []
    names = list(models)
    lines = ["| model | " + " | ".join(header for _, header, _ in cols) + " |", "|---|" + "---:|" * len(cols)]
    for i, name in enumerate(names):
        first = models[names[0]]
        cells = [_cell(get(models[name]), None if i == 0 else get(first)) for _, _, get in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    published = reference_rows(results, cols)
    for j, (label, values) in enumerate(published):
        base = published[0][1] if j else {}
        lines.append(f"| {label} | " + " | ".join(_cell(values.get(k), base.get(k)) for k, _, _ in cols) + " |")
    lines += ["", _notes(results, names, bool(published))]
    return lines


def _notes(results: dict, names: list[str], published: bool) -> str:
    notes = [
        "Scores x100. MRCR / GraphWalks: the <=128k average (prompts of at most 128k tokens), the same per needle "
        "count or problem type, then every prompt of each context bin."
    ]
    if len(names) > 1:
        notes.append(f"In parentheses: the difference from the first model, **{names[0]}**.")
    general = {}
    for m in results["models"].values():
        for bench, g in general_scores(m.get("general")).items():
            general.setdefault(bench, set()).add(f"`{g['metric']}` of `{g['task']}`")
    for bench, metrics in general.items():
        notes.append(f"{GENERAL_TITLES[bench]}: {', '.join(sorted(metrics))} (harness, x100).")
    if published:
        reference = results["reference"]
        kinds = {info["kind"] for info in results.get("data", {}).values()}
        comparable = kinds == {"hub"}
        notes.append(
            f"*published* rows: numbers from {reference['source']}, NOT measured here, shown in the <=128k columns "
            f"(the paper's exact evaluation settings are not reproduced here); in parentheses, + ACC against the "
            f"published base. {reference['note']} "
            + (
                "This report's data is the official sets."
                if comparable
                else "This report's data is NOT the official sets, so its scores do not compare with them."
            )
            + " `--no-reference` leaves these rows out."
        )
    return "\n".join(f"- {note}" for note in notes)


# ---- merging several acc eval runs ---------------------------------------------------------------------------------


def load_run(path: str | Path) -> tuple[Path, dict]:
    """results.json of an `acc eval` output folder (or the file itself); older runs' harness.json is folded in."""
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{path}: no results.json (give acc eval --out folders or their results.json)")
    results = json.loads(file.read_text())
    if not isinstance(results, dict) or not isinstance(results.get("models"), dict):
        raise ValueError(f"{file}: not an acc eval results.json (no 'models' mapping)")
    harness_file = file.parent / "harness.json"
    if harness_file.is_file():
        for name, outcome in json.loads(harness_file.read_text()).items():
            entry = results["models"].setdefault(name, {"model": name, "backend": "-", "summary": {}})
            entry.setdefault("general", outcome)
    return file, results


def _data_signature(results: dict, bench: str) -> dict:
    info = results.get("data", {}).get(bench, {})
    settings = results.get("settings", {})
    return {**{k: info.get(k) for k in DATA_FIELDS}, **{k: settings.get(k) for k in DATA_SETTINGS}}


def merge(paths: list[str | Path], names: list[str] | None = None, allow_different_data: bool = False) -> dict:
    """One results dict from several `acc eval` outputs: models in the order given (renamed by `names`, one per
    model), data and settings checked to define the same prompts per benchmark (else a ValueError that names the
    differing settings, unless allow_different_data)."""
    runs = [load_run(p) for p in paths]
    merged = {"models": {}, "data": {}, "settings": dict(runs[0][1].get("settings", {})), "merged_from": []}
    differences = []
    for file, run in runs:
        for bench, info in run.get("data", {}).items():
            if bench not in merged["data"]:
                merged["data"][bench] = info
                merged.setdefault("_signature", {})[bench] = (file, _data_signature(run, bench))
                continue
            first_file, first = merged["_signature"][bench]
            here = _data_signature(run, bench)
            diff = sorted(k for k in first if first[k] != here[k])
            if diff:
                shown = ", ".join(f"{k}: {first[k]!r} vs {here[k]!r}" for k in diff)
                differences.append(f"{bench} in {first_file} and {file} ({shown})")
        merged["merged_from"].append(
            {"path": str(file), "models": list(run["models"]), "settings": run.get("settings")}
        )
        for name, model in run["models"].items():
            if name in merged["models"] and names is None:
                raise ValueError(f"model name {name!r} is in more than one merged run ({file}): rename with --names")
            merged["models"][f"{name}\0{len(merged['models'])}" if name in merged["models"] else name] = model
    merged.pop("_signature", None)
    if differences and not allow_different_data:
        raise ValueError(
            "the merged runs evaluated different prompts, so their scores do not compare: "
            + "; ".join(differences)
            + " (rerun with the same data settings, or pass --allow-different-data)"
        )
    if differences:
        merged["data_differences"] = differences
    if names is not None:
        if len(names) != len(merged["models"]):
            raise ValueError(f"--names has {len(names)} names for the {len(merged['models'])} merged models")
        merged["models"] = dict(zip(names, merged["models"].values()))
        renamed = iter(names)
        for run in merged["merged_from"]:
            run["models"] = [next(renamed) for _ in run["models"]]
    return merged
