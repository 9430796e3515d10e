"""Write the ablation-arm recipes of recipes/ablations/ from the recipes they ablate.

Every arm is its base recipe with a few data (and, for the agent-SFT baseline, loss) fields replaced: TRL's
`TrlParser` reads one flat YAML file (no includes), so the arms are generated rather than copied by hand, and
`tests/recipes/test_ablation_recipes.py` checks that the files on disk are this script's output and that every arm
parses to its base's hyper-parameters except the declared fields.

    python recipes/ablations/make_recipes.py           # rewrite recipes/ablations/*.yaml and cpu/*.yaml
    python recipes/ablations/make_recipes.py --check   # exit 1 when a file is missing or differs

Edit recipes/qwen3_moe.yaml (or tiny_moe_cpu.yaml) or ARMS below, then rerun.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RECIPES = HERE.parent


@dataclass(frozen=True)
class Arm:
    name: str
    what: str  # what differs from the base recipe, in words
    data: str  # the command that builds the arm's dataset ({acc} = the ACC dataset, {out} = this arm's data)
    data_dir: str | None = None  # where `data` writes (None: the ACC dataset itself)
    overrides: dict = field(default_factory=dict)  # fields other than dataset_path / output_dir


ARMS = [
    Arm(
        "acc_full",
        "nothing: the ACC mixture (search + swe + sql), as the base recipe",
        "acc compile INPUTS --out {acc}",
    ),
    Arm(
        "agent_sft",
        "the agent-SFT view of the same trajectories (multi-turn `messages` with tool calls); loss on the assistant "
        "turns only (`assistant_only_loss: true`, `completion_only_loss: false`), so tool outputs carry no loss",
        "acc agent-sft INPUTS --acc {acc} --out {out}",
        "agent_sft_data",
        {"completion_only_loss": False, "assistant_only_loss": True},
    ),
    Arm(
        "search_only",
        "one domain: `acc_configs: [search]`",
        "the ACC dataset {acc}, its search config",
        None,
        {"acc_configs": ["search"]},
    ),
    Arm(
        "swe_only",
        "one domain: `acc_configs: [swe]`",
        "the ACC dataset {acc}, its swe config",
        None,
        {"acc_configs": ["swe"]},
    ),
    Arm(
        "sql_only",
        "one domain: `acc_configs: [sql]`",
        "the ACC dataset {acc}, its sql config",
        None,
        {"acc_configs": ["sql"]},
    ),
    Arm(
        "no_distractors",
        "contexts hold the gold evidence only (distractors removed)",
        "acc ablate {acc} --out {out} --ablation no-distractors",
        "acc_data_no_distractors",
    ),
    Arm(
        "gold_first",
        "evidence order not shuffled: gold pieces first, then distractors",
        "acc ablate {acc} --out {out} --ablation order=gold-first",
        "acc_data_gold_first",
    ),
    Arm(
        "gold_last",
        "evidence order not shuffled: distractors first, gold pieces last",
        "acc ablate {acc} --out {out} --ablation order=gold-last",
        "acc_data_gold_last",
    ),
    Arm(
        "budget_half",
        "token budgets halved (fewer distractors; gold pieces kept)",
        "acc ablate {acc} --out {out} --ablation budget-scale=0.5",
        "acc_data_budget_half",
    ),
]


@dataclass(frozen=True)
class Base:
    recipe: str  # file name in recipes/
    out_dir: str  # where the arm files go, relative to recipes/ablations/
    data_root: str  # where the arms' datasets are written
    output_prefix: str  # output_dir of an arm = output_prefix + arm name with dashes
    launch: str  # how to run an arm ({recipe} = the arm's file)
    arm_overrides: dict = field(default_factory=dict)  # arm name -> fields this base's arm sets besides the arm's own


BASES = [
    Base(
        "qwen3_moe.yaml",
        ".",
        "outputs",
        "outputs/ablations/qwen3-30b-a3b-thinking-",
        "accelerate launch --config_file recipes/accelerate/fsdp2.yaml -m acc_hf.train --config {recipe}",
        # Qwen3-*-Thinking-2507's chat template has no {% generation %} markers and TRL 1.16 does not swap in a
        # training template for it: its Qwen3 one renders tool calls and marks the assistant turns (recipes/README.md)
        {"agent_sft": {"chat_template_path": "trl:qwen3_training"}},
    ),
    Base("tiny_moe_cpu.yaml", "cpu", "outputs/demo", "outputs/ablations-cpu/tiny-", "acc train {recipe}"),
]


def arm_fields(base: Base, arm: Arm, base_config: dict) -> dict:
    """The fields this arm sets differently from (or in addition to) its base recipe."""
    fields = {"dataset_path": f"{base.data_root}/{arm.data_dir}"} if arm.data_dir else {}
    fields["output_dir"] = base.output_prefix + arm.name.replace("_", "-")
    return {**fields, **arm.overrides, **base.arm_overrides.get(arm.name, {})}


def _value(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()  # scalars end with a "..." line
    return text.removesuffix("...").strip()


def _dump(mapping: dict) -> str:
    """One `key: value` line per field (lists inline), in the given order."""
    return "".join(f"{key}: {_value(value)}\n" for key, value in mapping.items())


def render(base: Base, arm: Arm) -> str:
    base_config = yaml.safe_load((RECIPES / base.recipe).read_text())
    changed = arm_fields(base, arm, base_config)
    path = f"recipes/ablations/{base.out_dir}/{arm.name}.yaml".replace("/./", "/")
    command = arm.data.format(acc=base_config["dataset_path"], out=changed.get("dataset_path"))
    lines = [
        f"# Ablation arm `{arm.name}` of recipes/{base.recipe}: GENERATED by recipes/ablations/make_recipes.py, do",
        f"# not edit (edit recipes/{base.recipe} or the script, then rerun it).",
        *textwrap.wrap(f"What differs: {arm.what}.", 116, initial_indent="# ", subsequent_indent="#   "),
        f"# Data: {command}",
        f"# Train: {base.launch.format(recipe=path)}",
        "",
        f"# ---- this arm (differs from recipes/{base.recipe}) ----",
        _dump(changed).rstrip(),
        "",
        f"# ---- identical to recipes/{base.recipe} ----",
        _dump({k: v for k, v in base_config.items() if k not in changed}).rstrip(),
    ]
    return "\n".join(lines) + "\n"


def targets() -> dict[Path, str]:
    return {HERE / base.out_dir / f"{arm.name}.yaml": render(base, arm) for base in BASES for arm in ARMS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when a recipe file is missing or differs")
    args = parser.parse_args(argv)
    stale = []
    for path, text in targets().items():
        if path.is_file() and path.read_text() == text:
            continue
        if args.check:
            stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(RECIPES.parent)}")
    if stale:
        print("stale ablation recipes (run python recipes/ablations/make_recipes.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
