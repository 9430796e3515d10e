"""`acc comparison`: every arm is built by its recipe's command, trained from the same initialization and lands in
one report and in every arm's model card (a real run: tiny MoE, CPU, a few steps)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from acc_hf.cli import main
from acc_hf.comparison import data_command, load_arms

ARMS = ("acc_full", "agent_sft", "gold_last", "sql_only")


def test_every_recipe_arm_has_a_runnable_data_command(tmp_path):
    arms = load_arms()
    assert {a.name for a in arms} >= set(ARMS)
    for arm in arms:
        command = data_command(arm, tmp_path / "acc", tmp_path / "out")
        if arm.data_dir:
            assert command[0] in ("agent-sft", "ablate") and str(tmp_path / "out") in command
        else:
            assert command is None


def test_comparison_end_to_end(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["comparison", "--out", str(out), "--arms", ",".join(ARMS), "--max-steps", "2"]) == 0
    printed = capsys.readouterr().out
    names = ["base", *(a.name.replace("_", "-") for a in load_arms() if a.name in ARMS)]  # in the recipes' order

    results = json.loads((out / "eval" / "results.json").read_text())
    assert list(results["models"]) == names
    report = (out / "eval" / "report.md").read_text()
    table = report[report.index("## Comparison") :]
    for name in names:
        assert f"\n| {name} |" in table
    assert "*published*" in table and "68.3" in table  # the paper's reference rows
    assert "## Comparison" in printed and "training loss per arm" in printed
    for plot in ("score_vs_context.png", "scores_overall.png"):
        assert (out / "eval" / plot).stat().st_size > 0

    for arm in ARMS:  # every arm trained and its card holds the table
        model = out / "models" / arm
        assert (model / "model.safetensors").is_file() or list(model.glob("checkpoint-*/model.safetensors"))
        card = (model / "README.md").read_text()
        assert "Comparison with other checkpoints" in card and arm.replace("_", "-") in card

    # the agent-SFT arm covers exactly the ACC dataset's runs; gold-last keeps every gold piece, last
    def ids(folder):
        return sorted(
            i for f in folder.glob("data/*/*.parquet") for i in pq.read_table(f, columns=["id"])["id"].to_pylist()
        )

    assert ids(out / "data" / "agent_sft_data") == ids(out / "acc_data")
    for f in (out / "data" / "acc_data_gold_last").glob("data/*/*.parquet"):
        for pieces in pq.read_table(f, columns=["pieces"])["pieces"].to_pylist():
            flags = [p["is_distractor"] for p in pieces]
            assert flags == sorted(flags, reverse=True)  # distractors first, then gold
