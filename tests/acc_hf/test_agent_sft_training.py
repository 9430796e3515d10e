"""Training the agent-SFT view: in the batches TRL collates, the loss is exactly on the assistant turns (tool
responses, user and system turns are -100); in the ACC view it is exactly on the completion; `acc train` trains the
tiny MoE on the agent-SFT folder with assistant-only loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acc_hf.acc_config import ACCConfig, trl_chat_template
from acc_hf.acc_trainer import ACCTrainer, resolve_loss_masks
from dataset_builder.agent_sft import build_agent_sft
from dataset_builder.compile import compile_trajectories
from dataset_builder.domains import DomainOptions
from dataset_builder.load import load_acc_split

SAMPLES = Path(__file__).resolve().parents[2] / "dataset_builder" / "samples"
OPTS = DomainOptions(db_dir=SAMPLES / "sql", repos_dir=SAMPLES / "swe", page_cache_dir=SAMPLES / "corpus")


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    inputs = [SAMPLES / "search", SAMPLES / "sql", SAMPLES / "swe"]
    compile_trajectories(
        inputs, root / "acc", domain_options=OPTS, budgets=["search=2k", "sql=2k", "swe=2k:4k"], progress=False
    )
    build_agent_sft(None, root / "acc", root / "sft")
    return root / "acc", root / "sft"


def trainer_for(data, tmp_path, **overrides) -> ACCTrainer:
    args = ACCConfig(
        output_dir=str(tmp_path / "out"), max_length=4096, only_verified=False, use_cpu=True, report_to="none",
        activation_checkpointing=False, dataset_num_proc=None, shuffle_dataset=False, **overrides,
    )  # fmt: skip
    return ACCTrainer("tiny:", args=args, train_dataset=data)


def turns(ids: list[int], tok) -> list[tuple[str, range, range]]:
    """(role, header positions, body positions) of every `<|im_start|>role\\n ... <|im_end|>` turn, found from the
    token ids alone; a tool response is a user turn that starts with `<tool_response>`."""
    start, end = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    out, i = [], 0
    while i < len(ids):
        if ids[i] != start:
            i += 1
            continue
        h = i + 1
        while "\n" not in tok.decode(ids[i + 1 : h + 1]):
            h += 1
        e = ids.index(end, h + 1)
        role = tok.decode(ids[i + 1 : h + 1]).strip()
        if role == "user" and tok.decode(ids[h + 1 : e]).lstrip().startswith("<tool_response>"):
            role = "tool"
        out.append((role, range(i, h + 1), range(h + 1, e + 1)))
        i = e + 1
    return out


def check_loss_on_assistant_bodies(trainer: ACCTrainer, *, labelled_newline_ok: bool) -> dict[str, int]:
    """Every collated batch: labels != -100 exactly on assistant turn bodies (their <|im_end|> included); counts of
    tokens per role for the caller's checks."""
    tok = trainer.processing_class
    counts: dict[str, int] = {}
    n_batches = 0
    for batch in trainer.get_train_dataloader():
        n_batches += 1
        for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist()):
            expected = [False] * len(ids)
            inside = [False] * len(ids)
            for role, header, body in turns(ids, tok):
                counts[role] = counts.get(role, 0) + len(body)
                for p in (*header, *body):
                    inside[p] = True
                for p in body:
                    expected[p] = role == "assistant"
            for p, (label, want) in enumerate(zip(labels, expected)):
                if inside[p]:
                    assert (label != -100) == want, (p, tok.decode(ids[max(0, p - 8) : p + 2]))
                elif not (labelled_newline_ok and tok.decode([ids[p]]) == "\n"):
                    assert label == -100, (p, tok.decode(ids[max(0, p - 8) : p + 2]))
    assert n_batches
    return counts


def test_agent_sft_tool_outputs_carry_no_loss(views, tmp_path):
    _, sft = views
    data = load_acc_split(str(sft), "all", split="train")
    trainer = trainer_for(data, tmp_path)
    assert trainer.args.assistant_only_loss is True  # resolved from the messages layout
    counts = check_loss_on_assistant_bodies(trainer, labelled_newline_ok=False)
    assert counts["tool"] > counts["assistant"] > 0 and counts["user"] > 0 and counts["system"] > 0
    assert trainer.data_stats["train"]["samples"] == len(data)


def test_acc_view_loss_is_the_completion_only(views, tmp_path):
    acc, _ = views
    data = load_acc_split(str(acc), "all", split="train")
    trainer = trainer_for(data, tmp_path)
    assert trainer.args.assistant_only_loss is False
    counts = check_loss_on_assistant_bodies(trainer, labelled_newline_ok=True)  # the completion ends with "\n"
    assert "tool" not in counts and counts["user"] > counts["assistant"] > 0


def test_token_counts_in_meta_match_trl_tokenization(views):
    """stats.json / meta count tokens with acc-hf's own renderer (no transformers in dataset_builder): the same
    numbers as the tokenizer's apply_chat_template, which TRL uses."""
    from acc_hf.tiny import tiny_tokenizer

    _, sft = views
    tok = tiny_tokenizer()
    for row in load_acc_split(str(sft), "all", split="train"):
        out = tok.apply_chat_template(
            row["messages"], tools=row["tools"], return_dict=True, return_assistant_tokens_mask=True
        )
        meta = json.loads(row["meta"])
        assert meta["n_tokens"] == len(out["input_ids"]) and meta["n_loss_tokens"] == sum(out["assistant_masks"])


def test_loss_mask_defaults_and_trl_templates(tmp_path):
    from datasets import Dataset

    args = ACCConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    assert args.assistant_only_loss is None and args.completion_only_loss is True
    resolve_loss_masks(args, Dataset.from_dict({"messages": [[{"role": "user", "content": "x"}]]}))
    assert args.assistant_only_loss is True
    args.assistant_only_loss = None
    resolve_loss_masks(args, Dataset.from_dict({"prompt": [[]], "completion": [[]]}))
    assert args.assistant_only_loss is False
    assert Path(trl_chat_template("qwen3_training")).read_text().count("{% generation %}") >= 1
    qwen = ACCConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", chat_template_path="trl:qwen3_training")
    assert qwen.chat_template_path.endswith("chat_templates/qwen3_training.jinja")
    with pytest.raises(ValueError, match="no such template"):
        trl_chat_template("no_such_model")


def test_acc_train_on_the_agent_sft_view(views, tmp_path):
    """`acc train` with the tiny CPU recipe on the agent-SFT folder: a real run of a few steps."""
    from acc_hf.train import main

    _, sft = views
    out = tmp_path / "tiny-agent-sft"
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "tiny_moe_cpu.yaml"
    argv = ["--config", str(recipe), "--dataset_path", str(sft), "--output_dir", str(out), "--max_steps", "3",
            "--logging_steps", "1", "--save_strategy", "steps", "--save_steps", "3", "--only_verified", "false"]  # fmt: skip
    assert main(argv) == 0
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    assert len(losses) == 3 and all(0 < loss < 20 for loss in losses)
    assert any(e.get("acc/train/samples") for e in state["log_history"])
    assert "assistant-only=True" in (out / "README.md").read_text()
    assert (out / "model.safetensors").is_file()
