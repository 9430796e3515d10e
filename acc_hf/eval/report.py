"""Reports of an evaluation: summary tables (JSON + markdown), plots (score vs context, overall scores), and
model-index results. The comparison table across models and the published reference rows are in compare.py.

Scores are shown x100, as published (MRCR 50.2 -> 68.3, GraphWalks 69.9 -> 77.5 for Qwen3-30B-A3B-Thinking + ACC):
- MRCR: mean SequenceMatcher score per prompt-token bin x needle count, the "<=128k" average (all rows of at most
  131072 tokens) and the overall mean.
- GraphWalks: mean F1 per bin x problem type, "<=128k" and overall; also the overall mean under the published
  parser, which shows how much its glued "Final Answer: [" costs.
"""

from __future__ import annotations

import json
from pathlib import Path

from acc_hf.eval import BIN_LABELS, bin_upper

LE_128K = 131072
TITLES = {"mrcr": "MRCR", "graphwalks": "GraphWalks"}
GROUP_TITLES = {"mrcr": "needles", "graphwalks": "problem type"}


def _mean(values: list[float]) -> dict:
    return {"score": round(100 * sum(values) / len(values), 2) if values else None, "n": len(values)}


def _group_order(group: str):
    return (0, int(group), "") if group.isdigit() else (1, 0, group)


def summarize(records: list[dict]) -> dict:
    """Per benchmark: by_bin[bin][group|"all"], by_group, le_128k, overall (each {"score": x100 mean, "n"})."""
    out = {}
    for bench in TITLES:
        recs = [r for r in records if r["benchmark"] == bench]
        if not recs:
            continue
        groups = sorted({r["group"] for r in recs}, key=_group_order)
        bins = [b for b in BIN_LABELS if any(r["bin"] == b for r in recs)]
        by_bin = {}
        for b in bins:
            in_bin = [r for r in recs if r["bin"] == b]
            by_bin[b] = {g: _mean([r["score"] for r in in_bin if r["group"] == g]) for g in groups}
            by_bin[b]["all"] = _mean([r["score"] for r in in_bin])
        out[bench] = {
            "groups": groups,
            "by_bin": by_bin,
            "by_group": {g: _mean([r["score"] for r in recs if r["group"] == g]) for g in groups},
            "le_128k": _mean([r["score"] for r in recs if r["n_tokens"] <= LE_128K]),
            "le_128k_by_group": {
                g: _mean([r["score"] for r in recs if r["group"] == g and r["n_tokens"] <= LE_128K]) for g in groups
            },
            "overall": _mean([r["score"] for r in recs]),
        }
        if bench == "graphwalks":
            out[bench]["overall_official_parser"] = _mean([r["score_official_parser"] for r in recs])
    return out


def _cell(m: dict) -> str:
    return "-" if not m or m["n"] == 0 else f"{m['score']:.1f} ({m['n']})"


def markdown(results: dict) -> str:
    """The report: the comparison table of every model (and the published reference rows), then per model and
    benchmark a bin x group table, and the general benchmarks' harness results or commands."""
    from acc_hf.eval import compare

    models, data = results["models"], results["data"]
    lines = ["# Evaluation", ""]
    for bench, info in data.items():
        lines.append(
            f"- **{TITLES[bench]}** data: {info['source']} ({info['n_items']} prompts, {len(info['skipped'])} skipped, {info['filtered']} filtered out)"
        )
    for run in results.get("merged_from") or []:
        lines.append(f"- merged from `{run['path']}`: {', '.join(run['models'])}")
    for difference in results.get("data_differences") or []:
        lines.append(f"- **different data** (merged with --allow-different-data): {difference}")
    if table := compare.comparison_table(results):
        lines += ["", "## Comparison", "", *table]
    lines += [
        "",
        "Per-model tables: scores x100; cells show score (number of prompts). Bins count prompt tokens (sum over messages).",
        "",
    ]
    benches = [b for b in TITLES if b in data]
    for name, m in models.items():
        lines += [f"## {name}", "", f"`{m['model']}` via {m['backend']}", ""]
        for bench in benches:
            s = (m.get("summary") or {}).get(bench)
            if not s:
                continue
            groups = s["groups"]
            lines += [f"### {TITLES[bench]}", ""]
            lines.append(
                "| prompt tokens | "
                + " | ".join(f"{g} {GROUP_TITLES[bench] if bench == 'mrcr' else ''}".strip() for g in groups)
                + " | all |"
            )
            lines.append("|---|" + "---:|" * (len(groups) + 1))
            for b, row in s["by_bin"].items():
                lines.append(f"| {b} | " + " | ".join(_cell(row[g]) for g in groups) + f" | {_cell(row['all'])} |")
            lines.append(
                "| **<=128k** | "
                + " | ".join(_cell(s["le_128k_by_group"][g]) for g in groups)
                + f" | **{_cell(s['le_128k'])}** |"
            )
            lines.append(
                "| **all** | " + " | ".join(_cell(s["by_group"][g]) for g in groups) + f" | **{_cell(s['overall'])}** |"
            )
            if bench == "graphwalks":
                lines += [
                    "",
                    f'With the published parser ("Final Answer: [" glued to the first node): {_cell(s["overall_official_parser"])}.',
                ]
            lines.append("")
        if general := m.get("general"):
            scores = compare.general_scores(general)
            lines += ["### General benchmarks", ""]
            if scores:
                lines += [f"- {compare.GENERAL_TITLES[b]}: {g['score']:.1f} (`{g['metric']}` of `{g['task']}`)" for b, g in scores.items()]  # fmt: skip
            else:
                lines.append(f"- {general.get('note') or 'no results were found'}: `{general['command']}`")
            lines.append("")
    return "\n".join(lines)


def _colors(names: list[str]) -> dict[str, object]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def plot(results: dict, path: str | Path) -> dict[str, list[str]]:
    """Score vs context length (bin upper edge, log scale): one panel per benchmark, one line per model (the same
    color per model as in the overall chart). Returns the labels of the lines drawn in each panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = [b for b in TITLES if b in results["data"]]
    colors = _colors(list(results["models"]))
    fig, axes = plt.subplots(1, len(benches), figsize=(6.5 * len(benches), 4.6), squeeze=False)
    for ax, bench in zip(axes[0], benches):
        ticks = set()
        for name, m in results["models"].items():
            s = (m.get("summary") or {}).get(bench)
            if not s:
                continue
            points = [(bin_upper(b), row["all"]["score"]) for b, row in s["by_bin"].items() if row["all"]["n"]]
            ticks.update(b for b in s["by_bin"])
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=name, color=colors[name])
        ordered = [b for b in BIN_LABELS if b in ticks]
        ax.set_xscale("log", base=2)
        ax.set_xticks([bin_upper(b) for b in ordered], ordered, rotation=30, fontsize=8)
        ax.minorticks_off()
        ax.set_ylim(-2, 102)
        ax.set_xlabel("prompt tokens (bin)")
        ax.set_ylabel("score x100")
        ax.set_title(TITLES[bench])
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=8, ncol=1 if len(ax.get_lines()) <= 6 else 2)
    drawn = {bench: [line.get_label() for line in ax.get_lines()] for ax, bench in zip(axes[0], benches)}
    fig.tight_layout()
    fig.savefig(Path(path), dpi=120)
    plt.close(fig)
    return drawn


def plot_overall(results: dict, path: str | Path) -> dict:
    """Grouped bars: per benchmark (MRCR / GraphWalks <=128k, general benchmarks run), one bar per model with its
    value, and the published reference values as dashed lines with markers. Returns what was drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from acc_hf.eval import compare

    wanted = {f"{b}:le_128k" for b in TITLES} | set(compare.GENERAL_TITLES)
    cols = [c for c in compare.columns(results) if c[0] in wanted]
    names = list(results["models"])
    colors = _colors(names)
    reference = dict(compare.reference_rows(results, cols))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.5 + len(cols) * (0.6 + 0.4 * len(names))), 5.2))
    drawn = {"bars": {}, "reference": {}}
    styles = [("--", "dimgray"), (":", "black")]
    for i, (key, header, get) in enumerate(cols):
        drawn["bars"][header] = []
        for j, name in enumerate(names):
            value = get(results["models"][name])
            if not value or value.get("n", 1) == 0 or value.get("score") is None:
                continue
            x = i - 0.4 + width * (j + 0.5)
            ax.bar(x, value["score"], width * 0.9, color=colors[name])
            ax.annotate(f"{value['score']:.1f}", (x, value["score"]), ha="center", va="bottom", fontsize=7, xytext=(0, 1), textcoords="offset points")  # fmt: skip
            drawn["bars"][header].append(name)
        for k, (label, values) in enumerate(reference.items()):
            if key in values:
                score, (style, color) = values[key]["score"], styles[k % 2]
                ax.hlines(score, i - 0.45, i + 0.45, colors=color, linestyles=style, linewidth=1.6)
                ax.plot([i + 0.45], [score], marker="<", color=color, markersize=6)
                ax.annotate(f"{score:.1f}", (i + 0.48, score), fontsize=7, va="center", color=color)
                drawn["reference"].setdefault(header, []).append(label.replace("*", ""))
    ax.set_xticks(range(len(cols)), [header.replace(" <=128k", "\n<=128k") for _, header, _ in cols], fontsize=9)
    ax.set_xlim(-0.6, len(cols) - 0.25)
    ax.set_ylim(0, 105)
    ax.set_ylabel("score x100")
    ax.set_title("Overall scores" + (" (lines: published, not measured here)" if reference else ""), fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[n]) for n in names]
    labels = list(names)
    for k, label in enumerate(reference):
        style, color = styles[k % 2]
        handles.append(plt.Line2D([], [], color=color, linestyle=style, marker="<"))
        labels.append(label.replace("*", ""))
    ax.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(3, len(labels)))
    fig.tight_layout()
    fig.savefig(Path(path), dpi=120)
    plt.close(fig)
    return drawn


def eval_results(summary: dict, data: dict) -> list[dict]:
    """model-index entries (acc_hf.model_card format). Results on generated or local data say so in their name."""
    out = []
    for bench, s in summary.items():
        info = data[bench]
        official = info["kind"] == "hub"
        name = TITLES[bench] + ("" if official else f" ({info['kind']} data, not the official set)")
        metric, metric_name = ("score", "SequenceMatcher ratio x100") if bench == "mrcr" else ("f1", "set F1 x100")
        cells = [("<=128k", s["le_128k"])]
        for g, m in s["le_128k_by_group"].items():
            cells.append((f"{g} {GROUP_TITLES[bench]}, <=128k" if bench == "mrcr" else f"{g}, <=128k", m))
        for config, m in cells:
            if m["n"]:
                out.append(
                    {
                        "task": name,
                        "dataset": info["dataset"],
                        "metric": metric,
                        "metric_name": metric_name,
                        "value": m["score"],
                        "config": config,
                        "split": "train",
                    }
                )
    return out


def model_results(model: dict, data: dict) -> list[dict]:
    """model-index entries of one evaluated model: MRCR / GraphWalks (eval_results) and the general benchmarks whose
    harness ran (dataset = the harness task, metric = the harness metric)."""
    from acc_hf.eval import compare

    out = eval_results(model.get("summary") or {}, data)
    general = model.get("general") or {}
    for bench, g in compare.general_scores(general).items():
        out.append(
            {
                "task": compare.GENERAL_TITLES[bench],
                "dataset": g["task"],
                "metric": g["metric"],
                "metric_name": f"{g['metric']} x100 ({general['harness']})",
                "value": g["score"],
            }
        )
    return out


def card_comparison(results: dict, name: str) -> str | None:
    """The comparison table as a model card section, naming which row is the card's model."""
    from acc_hf.eval import compare

    table = compare.comparison_table(results)
    if not table:
        return None
    return "\n".join([f"This model is **{name}** in the table (written by `acc eval`).", "", *table])


def write_model_card(card: str | Path, results: list[dict], comparison: str | None = None) -> Path:
    """Merge results into the card's model-index (entries of other benchmarks are kept) via acc_hf.model_card;
    `comparison` (markdown) replaces the card's comparison section."""
    from acc_hf import model_card

    card = Path(card)
    out_dir = card.parent if card.suffix == ".md" else card
    stored = []
    context_file = out_dir / model_card.CONTEXT_FILE
    if context_file.is_file():
        stored = json.loads(context_file.read_text()).get("eval_results") or []
    fresh = {(r["task"], r["dataset"], r.get("config"), r["metric"]) for r in results}
    kept = [r for r in stored if (r["task"], r["dataset"], r.get("config"), r["metric"]) not in fresh]
    return model_card.write_model_card(out_dir, eval_results=kept + results, comparison=comparison)


def write_reports(results: dict, out_dir: str | Path) -> dict[str, Path]:
    """results.json, report.md, score_vs_context.png (when MRCR or GraphWalks ran) and scores_overall.png (when
    any score is there) in out_dir; returns their paths."""
    from acc_hf.eval import compare

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "markdown": out / "report.md"}
    if any(b in results["data"] for b in TITLES):
        paths["plot"] = out / "score_vs_context.png"
        results["plot_lines"] = plot(results, paths["plot"])
    if compare.columns(results):
        paths["overall_plot"] = out / "scores_overall.png"
        results["plot_overall"] = plot_overall(results, paths["overall_plot"])
    paths["json"].write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    paths["markdown"].write_text(markdown(results) + "\n")
    return paths
