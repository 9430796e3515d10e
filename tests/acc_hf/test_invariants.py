"""Correctness invariants of packed ACC training on CPU with the tiny Qwen3-MoE, in fp32.

Tolerances: losses within atol 1e-5; gradients within atol 1e-5 + rtol 1e-4 (measured differences are ~1e-7, the
fp32 rounding of summing the same terms in another order). The MoE aux loss is off here (coefficient 0): it is a
per-micro-batch statistic by definition, so it is not invariant to how tokens are grouped; its own scaling
invariants are in test_aux_loss_ddp.py.
"""

from __future__ import annotations

import pytest
import torch
from acc_train_data import GradCapture, acc_rows, make_trainer

from acc_hf.kernels import VARLEN_KEYS, attention_unavailable, check_packed_batch

LOSS_ATOL = 1e-5
GRAD_ATOL, GRAD_RTOL = 1e-5, 1e-4


def split_packed(row: dict) -> list[dict]:
    """The samples of one packed row, as separate examples."""
    out, start = [], 0
    for n in row["seq_lengths"]:
        out.append({"input_ids": row["input_ids"][start : start + n], "labels": row["labels"][start : start + n]})
        start += n
    return out


def loss_and_grads(trainer, batches: list[dict], n_items: int):
    model = trainer.model
    model.train()
    model.zero_grad()
    total = 0.0
    for batch in batches:
        loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=torch.tensor(n_items))
        loss.backward()
        total += loss.item()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return total, grads


def assert_grads_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=GRAD_ATOL, rtol=GRAD_RTOL, msg=name)


def test_packed_row_loss_and_grads_equal_per_sequence(tmp_path):
    trainer = make_trainer(acc_rows(4, seed=1), tmp_path, max_length=2048)
    row = trainer.train_dataset[0]
    assert len(row["seq_lengths"]) == 4  # all four samples share one packed row
    n_items = sum(sum(label != -100 for label in ex["labels"][1:]) for ex in split_packed(row))

    packed = trainer.data_collator([row])
    assert "attention_mask" not in packed and packed["position_ids"].shape == packed["input_ids"].shape
    packed_loss, packed_grads = loss_and_grads(trainer, [packed], n_items)

    singles = [trainer.data_collator([ex]) for ex in split_packed(row)]
    single_loss, single_grads = loss_and_grads(trainer, singles, n_items)

    assert packed_loss == pytest.approx(single_loss, abs=LOSS_ATOL)
    assert_grads_close(packed_grads, single_grads)


def test_packed_logits_equal_per_sequence_and_cache_trap_is_guarded(tmp_path):
    from acc_hf.tiny import tiny_model

    model = tiny_model(use_cache=True)  # the default of most Hub configs
    trainer = make_trainer(acc_rows(3, seed=2), tmp_path, model=model, max_length=2048)
    assert model.config.use_cache is False  # ACCTrainer switched the cache off
    row = trainer.train_dataset[0]
    packed = trainer.data_collator([row])
    model_inputs = {k: packed[k] for k in ("input_ids", "position_ids")}
    model.eval()
    with torch.no_grad():
        logits = model(**model_inputs).logits[0]
        crossed = model(**model_inputs, use_cache=True).logits[0]  # what a cache would do
        start, separate = 0, []
        for ex in split_packed(row):
            ids = torch.tensor([ex["input_ids"]])
            separate.append(model(input_ids=ids).logits[0])
            start += ids.shape[1]
    separate = torch.cat(separate)
    torch.testing.assert_close(logits, separate, atol=1e-5, rtol=1e-5)
    assert (crossed - separate).abs().max() > 1e-2  # the trap is real: with a cache the samples attend to each other

    check_packed_batch(packed, "sdpa")  # a TRL padding-free batch passes
    with pytest.raises(ValueError, match="attention_mask"):
        check_packed_batch({**packed, "attention_mask": torch.ones_like(packed["input_ids"])}, "sdpa")
    with pytest.raises(ValueError, match="cache"):
        check_packed_batch({**packed, "use_cache": True}, "sdpa")
    with pytest.raises(ValueError, match="position_ids"):
        check_packed_batch({"input_ids": packed["input_ids"]}, "sdpa")
    with pytest.raises(ValueError, match="cu_seq_lens"):
        check_packed_batch({k: v for k, v in packed.items() if not k.startswith("cu_seq")}, "flash_attention_2")
    model.train()
    with pytest.raises(ValueError, match="attention_mask"):  # and the trainer checks every batch
        trainer.compute_loss(model, {**packed, "attention_mask": torch.ones_like(packed["input_ids"])})


BACKENDS = ("sdpa", "eager", "flex_attention", "torch_varlen", "flash_attention_2", "flash_attention_3")


@pytest.mark.parametrize("backend", BACKENDS)
def test_packed_logits_equal_per_sequence_for_every_attention_backend(tmp_path, backend):
    """The same packed row from TRL's collator (position_ids restarting per sample, cu_seq_lens, no mask) through
    each attention implementation this machine can run gives the logits of running each sample alone (sdpa):
    no sample attends to another. CPU: fp32, flex compiled for CPU; CUDA: bf16."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    why_not = attention_unavailable(backend, training=False)
    if why_not:
        pytest.skip(f"{backend} cannot run here: {why_not}")
    from acc_hf.tiny import tiny_model

    dtype, tolerance = (torch.bfloat16, 3e-2) if device == "cuda" else (torch.float32, 1e-5)
    trainer = make_trainer(acc_rows(4, seed=1), tmp_path, max_length=2048)
    row = trainer.train_dataset[0]
    assert len(row["seq_lengths"]) == 4
    batch = trainer.data_collator([row])
    inputs = {
        k: batch[k].to(device) if torch.is_tensor(batch[k]) else batch[k]
        for k in ("input_ids", "position_ids", *VARLEN_KEYS)
    }
    model = tiny_model(seed=0).to(device, dtype).eval()
    with torch.no_grad():
        separate, start = [], 0
        for n in row["seq_lengths"]:
            separate.append(model(input_ids=inputs["input_ids"][:, start : start + n]).logits[0].float())
            start += n
        if backend == "torch_varlen":
            from acc_hf import varlen

            varlen.register()
        model.set_attn_implementation(backend)
        packed = model(**inputs).logits[0].float()
    torch.testing.assert_close(packed, torch.cat(separate), atol=tolerance, rtol=tolerance)


def test_batch4_accum1_equals_batch1_accum4(tmp_path):
    rows = acc_rows(12, seed=3)
    results = {}
    for bs, ga in ((4, 1), (1, 4)):
        capture = GradCapture()
        trainer = make_trainer(
            rows, tmp_path / f"b{bs}", max_length=512, per_device_train_batch_size=bs, gradient_accumulation_steps=ga,
            max_steps=1, max_grad_norm=0.0, logging_steps=1,
        )  # fmt: skip
        assert len(trainer.train_dataset) >= 4
        trainer.add_callback(capture.callback)
        trainer.train()
        results[bs] = (next(h["loss"] for h in trainer.state.log_history if "loss" in h), capture.grads)
    assert results[4][0] == pytest.approx(results[1][0], abs=LOSS_ATOL)
    assert_grads_close(results[4][1], results[1][1])


def test_completion_only_masking_inside_packed_rows(tmp_path):
    rows = acc_rows(10, seed=4)
    trainer = make_trainer(rows, tmp_path, max_length=512)
    tok = trainer.processing_class
    prompt_len = {}
    for r in rows:
        full = tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=True, return_dict=True)["input_ids"]
        prompt = tok.apply_chat_template(r["prompt"], tokenize=True, add_generation_prompt=True, return_dict=True)
        assert full[: len(prompt["input_ids"])] == prompt["input_ids"]
        prompt_len[tuple(full)] = len(prompt["input_ids"])
    segments = 0
    for row in trainer.train_dataset:
        assert sum(row["seq_lengths"]) == len(row["input_ids"]) <= 512
        for ex in split_packed(row):
            n = prompt_len[tuple(ex["input_ids"])]  # every packed sample is one whole ACC sample
            assert all(label == -100 for label in ex["labels"][:n])
            assert ex["labels"][n:] == ex["input_ids"][n:]
            segments += 1
        batch = trainer.data_collator([row])
        starts = (batch["position_ids"][0] == 0).nonzero().flatten()
        assert (batch["labels"][0, starts] == -100).all()  # no sample is trained to predict the next one's start
    assert segments == len(rows)


def test_per_domain_loss_and_accuracy_inside_packed_rows(tmp_path):
    trainer = make_trainer(acc_rows(6, seed=13), tmp_path, max_length=2048, log_per_domain=True)
    row = trainer.train_dataset[0]
    assert len(row["seq_lengths"]) == 6
    model = trainer.model
    model.train()
    packed = trainer.data_collator([row])
    with torch.no_grad():
        trainer.compute_loss(model, dict(packed))  # compute_loss pops domain_ids
    metrics = trainer._domain_metrics("train")
    # per sample: the sum of its token losses (num_items_in_batch=1) and its label count, grouped by domain
    names = trainer._domain_names
    expected = {}
    for ex, domain_ids in zip(split_packed(row), torch.split(packed["domain_ids"][0], row["seq_lengths"])):
        batch = trainer.data_collator([ex])
        with torch.no_grad():
            nll = trainer.compute_loss(model, batch, num_items_in_batch=torch.tensor(1)).item()
        n = int((batch["labels"][0, 1:] != -100).sum())
        name = names[int(domain_ids[0])]
        total = expected.setdefault(name, [0.0, 0])
        total[0], total[1] = total[0] + nll, total[1] + n
    assert len(expected) == 3
    for name, (nll, n) in expected.items():
        assert metrics[f"domain/{name}/tokens"] == n
        assert metrics[f"domain/{name}/loss"] == pytest.approx(nll / n, abs=LOSS_ATOL)
        assert 0.0 <= metrics[f"domain/{name}/token_accuracy"] <= 1.0
