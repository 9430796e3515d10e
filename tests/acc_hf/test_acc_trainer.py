"""ACCTrainer data preparation (verified / domain filters, over-length drops), config checks, RoPE scaling, the model
card, and the lazy package exports."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from acc_train_data import acc_rows, make_trainer

from acc_hf import ACCConfig
from acc_hf.model_card import check_eval_results, write_model_card


def full_token_ids(tokenizer, row) -> list[int]:
    return tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True, return_dict=True)[
        "input_ids"
    ]


def test_over_length_samples_are_dropped_counted_and_never_truncated(tmp_path, caplog):
    rows = acc_rows(10, seed=6, facts=(2, 4)) + acc_rows(3, seed=7, facts=(40, 50))
    with caplog.at_level(logging.WARNING, logger="acc_hf"):
        trainer = make_trainer(rows, tmp_path, max_length=512)
    tok = trainer.processing_class
    lengths = {tuple(full_token_ids(tok, r)): r["domain"] for r in rows}
    too_long = [ids for ids in lengths if len(ids) > 512]
    assert len(too_long) == 3
    stats = trainer.data_stats["train"]
    assert stats["dropped_over_length"] == 3 and stats["samples"] == 10
    assert stats["longest_dropped"] == max(len(ids) for ids in too_long)
    assert stats["tokens"] == sum(len(ids) for ids in lengths if len(ids) <= 512)
    assert sum(stats["dropped_over_length_per_domain"].values()) == 3
    assert sum(stats["per_domain"].values()) == 10  # the samples trained on
    assert any("dropped 3 of 13 samples longer than max_length=512" in r.message for r in caplog.records)
    # every packed sample is a whole sample: nothing was cut
    seen = 0
    for row in trainer.train_dataset:
        assert len(row["input_ids"]) <= 512
        start = 0
        for n in row["seq_lengths"]:
            assert tuple(row["input_ids"][start : start + n]) in lengths
            start, seen = start + n, seen + 1
    assert seen == 10
    assert stats["packed_rows"] == len(trainer.train_dataset)
    assert stats["fill"] == pytest.approx(stats["tokens"] / (512 * len(trainer.train_dataset)))


def test_only_verified_rows_of_the_chosen_domains(tmp_path):
    rows = acc_rows(12, seed=8, unverified_every=4)  # rows 0, 4, 8 unverified
    trainer = make_trainer(rows, tmp_path, acc_configs=["swe", "sql"])
    stats = trainer.data_stats["train"]
    kept = [r for r in rows if r["verified"] and r["domain"] in ("swe", "sql")]
    assert stats["dropped_unverified"] == 3
    assert stats["dropped_other_domains"] == sum(r["verified"] and r["domain"] == "search" for r in rows)
    assert stats["per_domain"] == {
        "sql": sum(r["domain"] == "sql" for r in kept),
        "swe": sum(r["domain"] == "swe" for r in kept),
    }
    assert stats["samples"] == len(kept)
    everything = make_trainer(rows, tmp_path / "all", acc_configs=["all"], only_verified=False)
    assert everything.data_stats["train"]["samples"] == 12


def test_config_and_model_checks(tmp_path):
    with pytest.raises(ValueError, match="cuts ACC samples"):
        ACCConfig(output_dir=str(tmp_path), use_cpu=True, packing_strategy="wrapped")
    with pytest.raises(ValueError, match="together"):
        ACCConfig(output_dir=str(tmp_path), use_cpu=True, rope_scaling_type="yarn")
    assert ACCConfig(output_dir=str(tmp_path), use_cpu=True).gradient_checkpointing is True  # activation checkpointing
    with pytest.raises(ValueError, match="exceeds the model's window of 131072 positions.*yarn.*factor: 2"):
        make_trainer(acc_rows(2), tmp_path, max_length=200_000)
    with pytest.raises(ValueError, match="built without it"):
        make_trainer(acc_rows(2), tmp_path, max_length=2048, rope_scaling_type="yarn", rope_scaling_factor=2.0)
    with pytest.raises(ValueError, match="leave the MoE aux loss out"), pytest.warns(FutureWarning):
        make_trainer(acc_rows(2), tmp_path, router_aux_loss_coef=0.01, label_smoothing_factor=0.1)
    with pytest.raises(TypeError, match="map-style"):
        from datasets import Dataset

        from acc_hf import ACCTrainer
        from acc_hf.tiny import tiny_model, tiny_tokenizer

        stream = Dataset.from_list(acc_rows(2)).to_iterable_dataset()
        args = ACCConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", max_steps=1)
        ACCTrainer(tiny_model(), args=args, train_dataset=stream, processing_class=tiny_tokenizer())


def test_yarn_scaling_extends_the_window_at_build_time(tmp_path):
    """The trainer builds a `tiny:` model with RoPE scaled (and refuses a model instance built without it)."""
    trainer = make_trainer(
        acc_rows(2), tmp_path, model="tiny:seed=3", max_length=2048,
        rope_scaling_type="yarn", rope_scaling_factor=4.0, rope_original_max_position_embeddings=65536,
    )  # fmt: skip
    model = trainer.model
    assert model.config.rope_parameters["rope_type"] == "yarn"
    assert model.config.rope_parameters["factor"] == 4.0
    assert model.config.rope_parameters["original_max_position_embeddings"] == 65536
    assert model.config.max_position_embeddings == 262144
    assert model.model.rotary_emb.attention_scaling > 1.0  # YaRN's attention factor is in use
    assert trainer._training_summary(model.config)["rope"] == "yarn x4.0"
    from acc_hf.tiny import tiny_model

    seeded = tiny_model(seed=3)
    assert all(torch.equal(a, b) for a, b in zip(seeded.parameters(), model.parameters()))  # tiny:seed=3 is seed 3
    with pytest.raises(ValueError, match="unknown tiny: option"):
        make_trainer(acc_rows(2), tmp_path, model="tiny:sed=3")


def test_a_named_checkpoint_is_built_once_by_the_trainer_the_trl_way(tmp_path):
    """Given a checkpoint path, ACCTrainer puts the kernel choice and RoPE scaling into `model_init_kwargs` and TRL
    builds the model from them; an attention implementation that contradicts attn_backend is refused."""
    from acc_hf.tiny import save_tiny

    base = save_tiny(tmp_path / "base", seed=0)
    trainer = make_trainer(
        acc_rows(2), tmp_path / "run", model=str(base), max_length=2048, model_init_kwargs={"dtype": "float32"},
        rope_scaling_type="yarn", rope_scaling_factor=2.0,
    )  # fmt: skip
    config = trainer.model.config
    assert config._attn_implementation == "sdpa" == trainer.args.model_init_kwargs["attn_implementation"]
    assert config.rope_parameters["rope_type"] == "yarn" and config.max_position_embeddings == 262144
    assert config.use_cache is False  # checked after TRL built it
    with pytest.raises(ValueError, match="attn_implementation='eager' but attn_backend='auto' chose 'sdpa'"):
        make_trainer(
            acc_rows(2), tmp_path / "run2", model=str(base), model_init_kwargs={"attn_implementation": "eager"}
        )


def test_model_card_with_data_counts_and_eval_results(tmp_path):
    from huggingface_hub import ModelCard

    rows = acc_rows(8, seed=9) + acc_rows(1, seed=10, facts=(40, 40))
    trainer = make_trainer(rows, tmp_path / "run", max_length=512)
    trainer.dataset_names = ["acc-hf/acc-demo"]
    trainer.create_model_card(model_name="tiny-acc")
    card_path = tmp_path / "run" / "README.md"
    text = card_path.read_text()
    assert "**1 train sample longer than\n`max_length` = 512 tokens was dropped**" in text
    assert "| train | 9 | 0 | 0 | 1 | 8 |" in text
    card = ModelCard.load(card_path)
    assert card.data.library_name == "transformers" and card.data.datasets == ["acc-hf/acc-demo"]
    assert "acc" in card.data.tags and card.data.license == "apache-2.0"
    assert card.data.eval_results is None  # no model-index until there are results

    results = [
        {"task": "MRCR", "dataset": "openai/mrcr", "metric": "score", "value": 68.3, "config": "8 needles"},
        {"task": "GraphWalks", "dataset": "openai/graphwalks", "metric": "f1", "value": 77.5, "split": "train"},
    ]
    write_model_card(tmp_path / "run", eval_results=results)  # later, by the evaluation, without the trainer
    card = ModelCard.load(card_path)
    got = {
        (r.task_name, r.dataset_type, r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results
    }
    assert got == {
        ("MRCR", "openai/mrcr", "8 needles", "score"): 68.3,
        ("GraphWalks", "openai/graphwalks", None, "f1"): 77.5,
    }
    assert card.data.model_name == "tiny-acc"
    assert "| MRCR | openai/mrcr | 8 needles | - | score | 68.30 |" in card.text
    assert "dropped" in card.text  # the training part survived the update

    trainer.save_model(str(tmp_path / "run"))  # saved for inference, training settings kept in memory
    assert json.loads((tmp_path / "run" / "config.json").read_text())["use_cache"] is True
    assert trainer.model.config.use_cache is False
    trainer.create_model_card(model_name="tiny-acc")  # a later save keeps the evaluation results
    assert len(ModelCard.load(card_path).data.eval_results) == 2
    with pytest.raises(ValueError, match=r"eval_results\[0\] lacks \['metric'\]"):
        check_eval_results([{"task": "MRCR", "dataset": "openai/mrcr", "value": 1.0}])
    with pytest.raises(ValueError, match="must be a number"):
        check_eval_results([{"task": "MRCR", "dataset": "openai/mrcr", "metric": "score", "value": "high"}])


def test_import_acc_hf_does_not_import_torch():
    code = "import sys, acc_hf; assert 'torch' not in sys.modules; print(sorted(acc_hf.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['ACCConfig', 'ACCTrainer']"


def test_gpu_recipe_and_accelerate_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    from acc_hf.train import make_parser

    root = Path(__file__).resolve().parents[2] / "recipes"
    # bf16 is refused on a CPU machine by TrainingArguments itself, so this check runs the GPU recipe in fp32
    script, args, model = make_parser().parse_args_and_config(
        args=[
            "--config",
            str(root / "qwen3_moe.yaml"),
            "--bf16",
            "false",
            "--use_cpu",
            "true",
            "--push_to_hub",
            "false",
        ]
    )
    assert model.model_name_or_path == "Qwen/Qwen3-30B-A3B-Thinking-2507" and model.dtype == "bfloat16"
    assert (args.max_length, args.num_train_epochs, args.packing_strategy) == (131072, 4, "bfd")
    assert args.padding_free and args.completion_only_loss and args.activation_checkpointing
    assert (args.attn_backend, args.use_liger_kernel, args.acc_domains) == (
        "auto",
        True,
        ["search", "swe", "sql"],
    )
    assert args.report_to == ["tensorboard"] and args.router_aux_loss_coef == 0.001
    fsdp = load_config_from_file(str(root / "accelerate" / "fsdp2.yaml"))
    assert fsdp.fsdp_config["fsdp_version"] == 2
    ulysses = load_config_from_file(str(root / "accelerate" / "zero3_ulysses.yaml"))
    sizes = ulysses.parallelism_config
    assert ulysses.deepspeed_config["zero_stage"] == 3 and sizes["parallelism_config_sp_backend"] == "deepspeed"
    product = sizes["parallelism_config_dp_replicate_size"] * sizes["parallelism_config_dp_shard_size"]
    assert product * sizes["parallelism_config_sp_size"] == ulysses.num_processes
    assert sizes["parallelism_config_sp_attn_implementation"] == "flash_attention_2"
