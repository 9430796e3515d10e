"""A 16k-token packed row of several ACC samples trains through ACCTrainer with activation checkpointing: one row,
every token counted once by the router telemetry (checkpointing recomputes each router in backward; those calls are
not counted). The tiny Qwen3-MoE runs with one layer, 2 query heads and 1 KV head here: on CPU, sdpa's
block-diagonal mask is dense T x T and each layer's attention costs seconds at 16k (bench/train.py measures the full
tiny model)."""

from __future__ import annotations

import math

import pytest
from acc_train_data import acc_rows, make_trainer

from acc_hf.router_stats import find_routers
from acc_hf.tiny import tiny_model

ROW = 16384


def one_checkpointed_step(rows, output_dir):
    """One optimizer step on `rows`; returns the trainer and the number of tokens of every router forward call."""
    model = tiny_model(seed=0, num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=1)
    trainer = make_trainer(
        rows, output_dir, model=model, max_length=ROW, max_steps=1, logging_steps=1, learning_rate=1e-3,
        activation_checkpointing=True, router_aux_loss_coef=0.01, router_heatmap=False,
    )  # fmt: skip
    router_calls = []
    for _, router in find_routers(trainer.model):
        router.register_forward_hook(lambda module, args, output: router_calls.append(output[0].shape[0]))
    trainer.train()
    return trainer, router_calls


@pytest.fixture(scope="module")
def long_rows():
    return acc_rows(4, seed=21, facts=(97, 97))  # 3964-4012 tokens each: 15915 tokens, one 16384-token row


def test_16k_packed_row_with_activation_checkpointing_counts_each_token_once(long_rows, tmp_path):
    trainer, router_calls = one_checkpointed_step(long_rows, tmp_path)
    stats = trainer.data_stats["train"]
    assert stats["samples"] == 4 and stats["dropped_over_length"] == 0
    assert stats["packed_rows"] == 1 and 0.9 < stats["fill"] <= 1.0, stats
    (row,) = trainer.train_dataset
    real_tokens = len(row["input_ids"])
    assert real_tokens == stats["tokens"] > 15000 and len(row["seq_lengths"]) == 4
    assert trainer.args.gradient_checkpointing and trainer.model.is_activation_checkpointing

    n_layers = trainer.model.config.num_hidden_layers
    # each router ran twice on the whole row (forward, then recomputed in backward), and counted once
    assert router_calls == [real_tokens] * (2 * n_layers), router_calls
    logged = next(h for h in trainer.state.log_history if "loss" in h)
    assert logged["router/tokens"] == real_tokens
    counts = trainer.router_callback.cumulative
    assert counts.tokens.tolist() == [real_tokens] * n_layers
    top_k = trainer.model.config.num_experts_per_tok
    assert counts.assignments.sum(dim=1).tolist() == [real_tokens * top_k] * n_layers
    assert math.isfinite(logged["loss"]) and logged["grad_norm"] > 0
