"""`acc`: the command line of acc-hf.

Each command lives in its own module, imported only when that command runs, so that a core install without torch
runs `acc compile`, `acc traces` and `acc push`. A command module defines `add_arguments(parser)` and `run(args)`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS = {
    "compile": (
        "dataset_builder.compile_cli",
        "compile agent trajectories into an ACC dataset (parquet + dataset card)",
    ),
    "agent-sft": (
        "dataset_builder.agent_sft",
        "the agent-SFT baseline of an ACC dataset: the same runs as tool-calling conversations (assistant-only loss)",
    ),
    "traces": (
        "dataset_builder.traces.cli",
        "add verified reasoning traces from a teacher model (or the trajectories)",
    ),
    "repos": (
        "dataset_builder.repos_cli",
        "clone (bare, blob-filtered, resumable) every repository a task table names, for acc compile --repos",
    ),
    "ablate": (
        "dataset_builder.ablate",
        "an ablation dataset (no distractors, one domain, smaller budgets, gold order) from a compiled one",
    ),
    "push": ("dataset_builder.push", "upload a compiled ACC dataset to the Hugging Face Hub"),
    "train": ("acc_hf.train", "train a model on ACC data with ACCTrainer from a YAML recipe"),
    "eval": ("acc_hf.eval.cli", "evaluate models on MRCR and GraphWalks; write reports, plots and model-index"),
    "analyze": ("acc_hf.analysis.cli", "attention-span and expert-specialization analysis of checkpoints"),
    "demo": ("acc_hf.demo", "run the whole loop on the bundled samples on CPU in a few minutes"),
    "comparison": (
        "acc_hf.comparison",
        "the paper's comparison on the bundled samples on CPU: ACC vs agent-SFT vs ablations, one report",
    ),
}

EPILOG = """\
typical workflow:
  acc compile my_trajectories/ --out acc_data          # trajectories -> parquet + card (+ rejects.jsonl)
  acc traces acc_data --teacher-url http://localhost:8000/v1 --model Qwen/Qwen3-235B-A22B-Thinking-2507
  acc push acc_data --repo my-org/acc-data
  accelerate launch --config_file recipes/accelerate/fsdp2.yaml -m acc_hf.train --config recipes/qwen3_moe.yaml
  acc eval outputs/qwen3-acc --benchmarks mrcr,graphwalks

run `acc COMMAND --help` for the options of a command."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acc",
        description="acc-hf: turn agent trajectories into long-context training data (ACC) and train MoE models on it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        if name == command:  # only the chosen command's module is imported
            module = importlib.import_module(module_name)
            if module.__doc__:
                sp.description = module.__doc__.strip()
            module.add_arguments(sp)
            sp.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if args.command is None else 2
    result = args._run(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
