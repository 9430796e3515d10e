"""The paper's comparison on the bundled samples, on CPU: every arm of recipes/ablations/ built, trained, evaluated,
in one report.

  1. compile the bundled trajectories into an ACC dataset, with verified traces from the trajectories themselves
  2. each arm's dataset, by the command its recipe names: the agent-SFT view of the same runs (`acc agent-sft`),
     the ablations (`acc ablate`: no distractors, gold first / last, budgets halved); single-domain arms select
     configs of the ACC dataset
  3. train the tiny Qwen3-MoE on every arm (recipes/ablations/cpu/<arm>.yaml: the same hyper-parameters, only the
     data and the loss mode differ), from the same initialization
  4. `acc eval` of the base model and every arm in one run: one table (MRCR by needles and bin, GraphWalks by problem
     type and bin, deltas vs the base, the paper's published numbers as reference rows), plots, and every arm's
     model card

A tiny model trained for a few steps on CPU shows none of the paper's effects: this checks that every arm compiles,
trains and lands in one report. On GPUs, the same arms run with recipes/ablations/*.yaml (recipes/ablations/README.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import sys
import time
from pathlib import Path

from acc_hf.demo import DEMO_BUDGETS, REPO_ROOT, acc, training_curve

ABLATIONS = REPO_ROOT / "recipes" / "ablations"


def load_arms() -> list:
    """The arms of recipes/ablations/make_recipes.py (name, what differs, the command that builds the data)."""
    path = ABLATIONS / "make_recipes.py"
    if not path.is_file():
        raise SystemExit(f"acc comparison needs the recipes/ folder of the source checkout ({path} not found)")
    spec = importlib.util.spec_from_file_location("acc_ablation_recipes", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module.ARMS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(arm.name for arm in load_arms())
    parser.add_argument(
        "--out", default="outputs/comparison", help="where everything goes (default outputs/comparison)"
    )
    parser.add_argument("--arms", help=f"comma list of arms (default all: {names})")
    parser.add_argument("--max-steps", type=int, default=30, help="training steps per arm (default 30)")
    parser.add_argument(
        "--eval-n", type=int, default=1, help="prompts per MRCR needle count / GraphWalks type and length"
    )
    parser.add_argument("--seed", type=int, default=0)


def banner(n: int, title: str) -> None:
    print(f"\n{'=' * 100}\n[{n}/5] {title}\n{'=' * 100}", flush=True)


def data_command(arm, acc_dir: Path, arm_dir: Path) -> list[str] | None:
    """The `acc` arguments that build the arm's dataset (None: the arm trains on the ACC dataset itself). INPUTS in a
    recipe's command means the trajectories the ACC dataset was compiled from, which `acc agent-sft` reads from its
    stats.json when none are given."""
    if not arm.data_dir:
        return None
    argv = shlex.split(arm.data.format(acc=acc_dir, out=arm_dir))
    if argv[0] != "acc":
        raise ValueError(f"arm {arm.name}: its data command is not an acc command: {arm.data!r}")
    return [a for a in argv[1:] if a != "INPUTS"]


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    arms = load_arms()
    if args.arms:
        wanted = [a.strip() for a in args.arms.split(",") if a.strip()]
        unknown = sorted(set(wanted) - {a.name for a in arms})
        if unknown:
            raise SystemExit(f"unknown arm {', '.join(unknown)} (arms: {', '.join(a.name for a in arms)})")
        arms = [a for a in arms if a.name in wanted]
    out = Path(args.out)
    acc_dir, base_dir = out / "acc_data", out / "models" / "base"
    t0 = time.perf_counter()

    banner(1, "compile the bundled trajectories; verified traces from the trajectories")
    budgets = sum((["--budget", b] for b in DEMO_BUDGETS), [])
    # rows of the CPU recipes' max_length (4096): nothing is dropped in training for being too long
    acc("compile", "--samples", "--out", acc_dir, "--seed", args.seed, "--max-length", 4096, *budgets)
    acc("traces", acc_dir, "--traces", "trajectory")

    banner(2, "each arm's dataset, by the command its recipe names")
    data: dict[str, Path] = {}
    for arm in arms:
        arm_dir = out / "data" / arm.data_dir if arm.data_dir else acc_dir
        command = data_command(arm, acc_dir, arm_dir)
        if command:
            acc(*command)
        data[arm.name] = arm_dir

    banner(3, "train the tiny MoE on every arm (same initialization and hyper-parameters)")
    from acc_hf.tiny import save_tiny

    save_tiny(base_dir, seed=0)  # what `tiny:` builds for training: the baseline of the report
    models: dict[str, Path] = {}
    for arm in arms:
        models[arm.name] = out / "models" / arm.name
        acc(
            "train", ABLATIONS / "cpu" / f"{arm.name}.yaml",
            "--dataset_path", data[arm.name], "--output_dir", models[arm.name],
            "--max_steps", args.max_steps, "--save_strategy", "steps", "--save_steps", args.max_steps,
            "--logging_steps", max(1, args.max_steps // 5), "--seed", args.seed,
        )  # fmt: skip

    banner(4, "evaluate the base model and every arm in one report")
    eval_dir = out / "eval"
    names = ["base", *(arm.name.replace("_", "-") for arm in arms)]
    acc(
        "eval", base_dir, *models.values(), "--names", ",".join(names), "--data", "generated",
        "--n", args.eval_n, "--lengths", "1500,3000", "--needles", "2,4", "--max-new-tokens", 24,
        "--seed", args.seed, "--out", eval_dir, "--model-card",
    )  # fmt: skip

    banner(5, "summary")
    print(summary(arms, models, eval_dir, time.perf_counter() - t0))
    return 0


def summary(arms, models: dict[str, Path], eval_dir: Path, seconds: float) -> str:
    lines = ["training loss per arm (first -> last logged):"]
    for arm in arms:
        losses, _ = training_curve(models[arm.name])
        curve = f"{losses[0]:.3f} -> {losses[-1]:.3f}" if losses else "no loss logged"
        lines.append(f"  {arm.name:15s} {curve:18s} {arm.what[:70]}")
    report = eval_dir / "report.md"
    if report.is_file():  # its comparison table (the per-model tables follow it in the file)
        text = report.read_text(encoding="utf-8")
        start = text.find("## Comparison")
        end = text.find("\nPer-model tables", start)
        lines += ["", text[start : end if end > 0 else None].strip(), ""] if start >= 0 else []
    lines.append(
        "a tiny model after a few CPU steps shows none of the paper's effects: this run checks that every arm "
        "builds, trains and lands in one report (the GPU arms: recipes/ablations/README.md)"
    )
    lines += [f"report: {report}", f"plots: {eval_dir}", f"models and cards: {eval_dir.parent / 'models'}"]
    lines.append(f"done in {seconds / 60:.1f} min")
    return "\n".join(lines)
