"""`acc train recipes/tiny_moe_cpu.yaml` end to end on CPU: a small ACC dataset written as parquet + card, 12
optimizer steps, then the logs (loss falls, router and per-domain keys), the checkpoint (router heatmap, data counts
in the trainer state), the model card, and a reload with `from_pretrained`."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from acc_train_data import acc_rows, write_acc_dataset

from acc_hf.cli import main as acc_main

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "tiny_moe_cpu.yaml"


def test_acc_train_tiny_recipe_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = acc_rows(40, seed=11, unverified_every=10) + acc_rows(2, seed=12, facts=(60, 60))  # 2 too long for 512
    data = write_acc_dataset(tmp_path / "acc_data", rows)
    out = tmp_path / "run"
    code = acc_main(
        [
            "train", str(RECIPE),
            "--dataset_path", str(data), "--output_dir", str(out), "--max_length", "512",
            "--max_steps", "12", "--logging_steps", "3", "--save_strategy", "steps", "--save_steps", "12",
            "--gradient_accumulation_steps", "1", "--learning_rate", "5e-3",
        ]
    )  # fmt: skip
    assert code == 0

    state = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())
    history = state["log_history"]
    data_entry = next(h for h in history if "acc/train/dropped_over_length" in h)
    assert data_entry["acc/train/dropped_over_length"] == 2
    assert data_entry["acc/train/dropped_unverified"] == 4
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.3, losses
    train_logs = [h for h in history if "loss" in h]
    assert all("router/max_over_mean" in h and "router/layer1/entropy" in h for h in train_logs)
    assert any(k.startswith("domain/") and k.endswith("/loss") for k in train_logs[-1])
    assert all(h["router/tokens"] > 0 for h in train_logs)

    assert (out / "checkpoint-12" / "router_load.png").stat().st_size > 1000
    assert json.loads((out / "checkpoint-12" / "router_stats.json").read_text())["step"] == 12
    card = (out / "README.md").read_text()
    assert "library_name: transformers" in card and "## MoE router" in card and "![Router load" in card
    assert "**2 train samples longer than" in card and (out / "router_load.png").is_file()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    saved = json.loads((out / "config.json").read_text())  # for inference: cache on, no router logits
    assert saved["use_cache"] is True and saved["output_router_logits"] is False
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "Qwen3MoeForCausalLM"
    ids = tokenizer.apply_chat_template(
        rows[0]["prompt"], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        logits = model(**ids).logits
    assert torch.isfinite(logits).all() and logits.shape[-1] == model.config.vocab_size


def test_acc_train_evaluates_on_the_held_out_split(tmp_path, monkeypatch):
    """`acc compile --test-size` then `acc train --dataset_eval_split test`: held-out loss, overall and per domain."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data, out = tmp_path / "acc_data", tmp_path / "run"
    assert acc_main(["compile", "--samples", "--out", str(data), "--test-size", "0.3", "--no-progress"]) == 0
    code = acc_main(
        [
            "train", str(RECIPE), "--dataset_path", str(data), "--output_dir", str(out), "--only_verified", "false",
            "--dataset_eval_split", "test", "--eval_strategy", "steps", "--eval_steps", "2", "--max_steps", "2",
            "--logging_steps", "1", "--save_strategy", "steps", "--save_steps", "2",
        ]
    )  # fmt: skip
    assert code == 0
    history = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    evals = [h for h in history if "eval_loss" in h]
    assert len(evals) == 1 and evals[0]["step"] == 2
    assert any(k.startswith("eval_domain/") and k.endswith("/loss") for k in evals[0])
