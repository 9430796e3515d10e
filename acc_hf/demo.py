"""The whole ACC loop on the bundled samples, on CPU, in a few minutes:

  1. compile the bundled trajectories (search, swe, sql; written by acc-hf's scripted agents with real tools)
  2. reasoning traces from the trajectories themselves (no teacher needed), kept only when the answer verifies
  3. load the dataset with `datasets.load_dataset`, as a user would
  4. train a tiny Qwen3-MoE with ACCTrainer (recipes/tiny_moe_cpu.yaml): packing, completion-only loss, router stats
  5. evaluate base vs trained on small generated MRCR / GraphWalks sets
  6. attention-span and expert-specialization analysis, base vs trained
  7. model card + dataset card, written locally; a summary of where everything is

Each step is the `acc` command a user would type (printed as it runs), so the demo doubles as a tutorial.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPE = REPO_ROOT / "recipes" / "tiny_moe_cpu.yaml"
DEMO_BUDGETS = ["search=2k:4k", "swe=2k:4k", "sql=2k:4k"]  # small contexts: the tiny model trains on CPU


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="outputs/demo", help="where everything goes (default outputs/demo)")
    parser.add_argument("--max-steps", type=int, default=200, help="training steps of the tiny MoE (default 200)")
    parser.add_argument("--eval-n", type=int, default=2, help="prompts per MRCR needle count / GraphWalks type")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-analysis", action="store_true", help="skip step 6 (attention and expert analysis)")


def acc(*argv) -> None:
    """Run one `acc` command in this process, as a user would type it."""
    from acc_hf.cli import main

    argv = [str(a) for a in argv]
    print(f"\n$ acc {shlex.join(argv)}", flush=True)
    code = main(argv)
    if code:
        raise SystemExit(f"`acc {argv[0]}` failed with exit code {code}")


def step(n: int, title: str) -> float:
    print(f"\n{'=' * 100}\n[{n}/7] {title}\n{'=' * 100}", flush=True)
    return time.perf_counter()


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not RECIPE.is_file():
        raise SystemExit(f"acc demo needs the recipes/ folder of the source checkout ({RECIPE} not found)")
    out = Path(args.out)
    data, model_dir, base_dir = out / "data", out / "tiny-moe-acc", out / "tiny-moe-base"
    t0 = time.perf_counter()

    step(1, "compile the bundled trajectories into an ACC dataset")
    acc("compile", "--samples", "--out", data, "--seed", args.seed, *sum((["--budget", b] for b in DEMO_BUDGETS), []))

    step(2, "reasoning traces from the trajectories, kept when their answers verify")
    acc("traces", data, "--traces", "trajectory")

    step(3, "load it with datasets (the card's configs, read fresh from disk)")
    from dataset_builder.load import acc_config_names, load_acc_split

    loaded = {cfg: load_acc_split(str(data), cfg, split="train") for cfg in acc_config_names(str(data))}
    for cfg, ds in loaded.items():
        print(f"  load_acc_split({str(data)!r}, {cfg!r}): {len(ds)} rows, {sum(ds['verified'])} verified")

    step(4, "train a tiny Qwen3-MoE with ACCTrainer on the verified records")
    from acc_hf.tiny import save_tiny

    save_tiny(base_dir, seed=0)  # the same initialization `tiny:` builds for training: the eval baseline
    acc(
        "train",
        RECIPE,
        "--dataset_path",
        data,
        "--output_dir",
        model_dir,
        "--max_steps",
        args.max_steps,
        "--save_strategy",
        "steps",
        "--save_steps",
        args.max_steps,
        "--logging_steps",
        10,
        "--seed",
        args.seed,
    )

    step(5, "evaluate base vs trained on generated MRCR and GraphWalks sets")
    eval_dir = out / "eval"
    acc(
        "eval",
        base_dir,
        model_dir,
        "--names",
        "base,acc",
        "--data",
        "generated",
        "--n",
        args.eval_n,
        "--lengths",
        "1500,3000",
        "--needles",
        "2,4",
        "--max-new-tokens",
        24,
        "--out",
        eval_dir,
        "--model-card",
        model_dir / "README.md",
    )

    analysis_dir = out / "analysis"
    if not args.skip_analysis:
        step(6, "attention span and expert specialization, base vs trained")
        for kind in ("attention", "experts"):
            acc(
                "analyze",
                kind,
                base_dir,
                model_dir,
                "--data",
                data,
                "--n",
                4,
                "--max-tokens",
                4096,
                "--labels",
                "base",
                "acc",
                "--out",
                analysis_dir / kind,
            )

    step(7, "summary")
    print(summary(out, data, model_dir, eval_dir, analysis_dir, time.perf_counter() - t0))
    return 0


def summary(out: Path, data: Path, model_dir: Path, eval_dir: Path, analysis_dir: Path, seconds: float) -> str:
    stats = json.loads((data / "stats.json").read_text())
    lines = ["records per domain (inputs = records + rejects; verified traces):"]
    traces = (stats.get("traces") or {}).get("domains", {})
    for domain, c in stats["domains"].items():
        verified = traces.get(domain, {}).get("verified", 0)
        lines.append(f"  {domain:7s} {c['n_in']:3d} = {c['n_records']:3d} + {c['n_rejected']:3d}   verified {verified}")
    losses, router = training_curve(model_dir)
    if losses:
        lines.append(f"train loss: {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} logging steps")
    if router:
        lines.append(
            f"router: max/mean expert load {router.get('router/max_over_mean', float('nan')):.2f}, "
            f"dead experts {router.get('router/dead_experts', 0):.0f}, entropy {router.get('router/entropy', float('nan')):.2f} nats"
        )
    results = eval_dir / "results.json"
    if results.is_file():
        lines.append("eval (generated sets, not the official ones):")
        for model, scores in eval_scores(json.loads(results.read_text())).items():
            lines.append(f"  {model:6s} " + "  ".join(f"{k} {v:.1f}" for k, v in scores.items()))
    lines.append("where everything is:")
    for label, path in [
        ("dataset + card", data / "README.md"),
        ("rejects", data / "rejects.jsonl"),
        ("length plots", data / "plots"),
        ("model + card", model_dir / "README.md"),
        ("router heatmaps", model_dir),
        ("eval report", eval_dir),
        ("analysis", analysis_dir),
    ]:
        if path.exists():
            lines.append(f"  {label:16s} {path}")
    lines.append(f"done in {seconds / 60:.1f} min")
    return "\n".join(lines)


def training_curve(model_dir: Path) -> tuple[list[float], dict]:
    states = sorted(model_dir.glob("checkpoint-*/trainer_state.json")) or [model_dir / "trainer_state.json"]
    states = [s for s in states if s.is_file()]
    if not states:
        return [], {}
    history = json.loads(states[-1].read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    router = next((h for h in reversed(history) if "router/max_over_mean" in h), {})
    return losses, router


def eval_scores(results: dict) -> dict[str, dict[str, float]]:
    """{model: {benchmark: overall score x100}} from the eval report's results.json."""
    return {
        name: {bench: s["overall"]["score"] for bench, s in m["summary"].items() if s.get("overall", {}).get("n")}
        for name, m in results.get("models", {}).items()
    }
