"""The ablation arms in recipes/ablations/ are their base recipe with only the declared data (and loss) fields
changed: each file is parsed by the real argument parser of `acc train` (TRL's TrlParser over ACCScriptArguments,
ACCConfig and ModelConfig), next to its base, and every parsed field is compared. The files are also what
recipes/ablations/make_recipes.py writes (no hand edit drifts from the generator)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import fields
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ABLATIONS = ROOT / "recipes" / "ablations"
# bf16 is refused on a CPU machine by TrainingArguments itself: base and arm are parsed with the same overrides
CPU = ["--bf16", "false", "--use_cpu", "true", "--push_to_hub", "false"]

# What each arm may change, with the value it must have. Written here independently of the generator.
GPU_DATA = {
    "acc_full": {},
    "agent_sft": {"dataset_path": "outputs/agent_sft_data", "completion_only_loss": False, "assistant_only_loss": True},
    "search_only": {"acc_configs": ["search"]},
    "swe_only": {"acc_configs": ["swe"]},
    "sql_only": {"acc_configs": ["sql"]},
    "no_distractors": {"dataset_path": "outputs/acc_data_no_distractors"},
    "gold_first": {"dataset_path": "outputs/acc_data_gold_first"},
    "gold_last": {"dataset_path": "outputs/acc_data_gold_last"},
    "budget_half": {"dataset_path": "outputs/acc_data_budget_half"},
}
GPU_ONLY = {"agent_sft": {"chat_template_path": "trl:qwen3_training"}}  # TRL's Qwen3 training template
CASES = [("qwen3_moe.yaml", ".", "outputs/ablations/qwen3-30b-a3b-thinking-", "outputs"),
         ("tiny_moe_cpu.yaml", "cpu", "outputs/ablations-cpu/tiny-", "outputs/demo")]  # fmt: skip


def _parse(recipe: Path) -> dict:
    from acc_hf.train import make_parser

    parsed = make_parser().parse_args_and_config(args=["--config", str(recipe), *CPU])
    return {f.name: getattr(obj, f.name) for obj in parsed for f in fields(obj)}


@pytest.fixture(scope="module")
def bases() -> dict:
    return {base: _parse(ROOT / "recipes" / base) for base, *_ in CASES}


def _declared(arm: str, prefix: str, data_root: str) -> dict:
    declared = dict(GPU_DATA[arm])
    if data_root == "outputs":
        declared.update(GPU_ONLY.get(arm, {}))
    if "dataset_path" in declared and data_root != "outputs":
        declared["dataset_path"] = declared["dataset_path"].replace("outputs", data_root, 1)
    return {**declared, "output_dir": prefix + arm.replace("_", "-")}


@pytest.mark.parametrize("base, folder, prefix, data_root", CASES)
@pytest.mark.parametrize("arm", list(GPU_DATA))
def test_arm_equals_its_base_except_the_declared_fields(bases, base, folder, prefix, data_root, arm):
    path = ABLATIONS / folder / f"{arm}.yaml"
    got, reference = _parse(path), bases[base]
    declared = _declared(arm, prefix, data_root)
    differing = {k for k in reference if got[k] != reference[k]}  # every parsed field is compared
    assert differing == {k for k, v in declared.items() if reference[k] != v}, path
    for key, value in declared.items():
        if key == "chat_template_path":  # acc train resolves trl:NAME to the file TRL ships
            assert Path(got[key]).name == value.removeprefix("trl:") + ".jinja" and Path(got[key]).is_file()
        else:
            assert got[key] == value, (path, key)
    assert path.read_text().count(f"recipes/{base}") >= 2  # the header names the base it ablates


def test_the_declared_hyper_parameters_are_the_gpu_recipe_s(bases):
    gpu = bases["qwen3_moe.yaml"]
    agent = _parse(ABLATIONS / "agent_sft.yaml")
    for key in ("learning_rate", "num_train_epochs", "max_length", "gradient_accumulation_steps", "seed", "packing"):
        assert agent[key] == gpu[key]
    assert agent["model_name_or_path"] == "Qwen/Qwen3-30B-A3B-Thinking-2507"
    assert (agent["assistant_only_loss"], agent["completion_only_loss"]) == (True, False)
    assert not gpu["assistant_only_loss"] and gpu["completion_only_loss"]  # None: ACCConfig decides by the data
    outputs = {_parse(ABLATIONS / f"{arm}.yaml")["output_dir"] for arm in GPU_DATA}
    assert len(outputs) == len(GPU_DATA)  # no two arms write (or push) the same checkpoint


def _generator():
    spec = importlib.util.spec_from_file_location("make_recipes", ABLATIONS / "make_recipes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def test_files_are_the_generator_s_output_and_the_readme_lists_every_arm(tmp_path):
    make = _generator()
    targets = make.targets()
    on_disk = set(ABLATIONS.glob("*.yaml")) | set((ABLATIONS / "cpu").glob("*.yaml"))
    assert set(targets) == on_disk
    for path, text in targets.items():
        assert path.read_text() == text, f"{path} differs from make_recipes.py's output: rerun it"
    assert make.main(["--check"]) == 0
    readme = (ABLATIONS / "README.md").read_text()
    for arm in make.ARMS:
        assert f"`{arm.name}.yaml`" in readme
