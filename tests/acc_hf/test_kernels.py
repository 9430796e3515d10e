"""Kernel selection on this machine, the up-front Liger check, and the collator additions (domain ids, Ulysses)."""

from __future__ import annotations

import logging

import pytest
import torch
from acc_train_data import acc_rows, make_trainer

from acc_hf.acc_trainer import ACCCollator
from acc_hf.kernels import VARLEN_KEYS, check_liger_available, select_kernels

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")


@no_cuda
def test_cpu_selects_sdpa_and_torch_tiles():
    plan = select_kernels("auto")
    assert plan.attn_implementation == "sdpa"
    assert "block-diagonal" in plan.packed_attention and "torch tiles" in plan.loss and not plan.liger
    assert "no CUDA" in plan.describe()
    assert select_kernels("eager").attn_implementation == "eager"
    with pytest.raises(ValueError, match="flash-attn"):
        select_kernels("flash_attention_2")
    with pytest.raises(ValueError, match="FlashAttention-3"):
        select_kernels("flash_attention_3")
    with pytest.raises(ValueError, match="attn_backend"):
        select_kernels("flex")


@no_cuda
def test_liger_without_gpu_fails_up_front_with_a_clear_message():
    with pytest.raises(ValueError, match="use_liger_kernel=True cannot run on this machine: no CUDA device") as err:
        check_liger_available()
    assert "use_liger_kernel: false" in str(err.value)


def test_a_cpu_run_never_gets_gpu_kernels_even_on_a_gpu_machine(tmp_path):
    """use_cpu=True: sdpa (never FA2, which has no CPU kernel), and Liger is refused before any data is touched."""
    assert select_kernels("auto", use_cpu=True).attn_implementation == "sdpa"
    with pytest.raises(ValueError, match="use_cpu off"):
        select_kernels("flash_attention_2", use_cpu=True)
    from acc_hf import ACCConfig, ACCTrainer
    from acc_hf.tiny import tiny_model

    args = ACCConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, use_liger_kernel=True, report_to="none")
    with pytest.raises(ValueError, match="cannot run on this machine: use_cpu is set"):
        ACCTrainer(tiny_model(), args=args, train_dataset=object())  # a dataset it could not even prepare


def test_trainer_logs_the_path_taken_and_sets_the_model(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="acc_hf"):
        trainer = make_trainer(acc_rows(3), tmp_path)  # use_cpu=True
    assert trainer.model.config._attn_implementation == "sdpa" == trainer.attn_implementation
    assert any(r.message.startswith("kernels: attention=sdpa") and "use_cpu" in r.message for r in caplog.records)


def test_collator_adds_domain_ids_and_drops_varlen_keys_under_ulysses(tmp_path):
    trainer = make_trainer(acc_rows(9, seed=5), tmp_path, log_per_domain=True, max_length=512)
    rows = [trainer.train_dataset[i] for i in range(2)]
    batch = trainer.data_collator(rows)
    assert batch["domain_ids"].shape == batch["input_ids"].shape  # flattened like the tokens
    assert all(k in batch for k in VARLEN_KEYS)
    # TRL's collator already precomputes the varlen boundaries: they match position_ids
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist()
    assert batch["cu_seq_lens_q"].tolist() == [*starts, batch["input_ids"].shape[1]]
    assert batch["max_length_q"] == int(batch["cu_seq_lens_q"].diff().max())
    # each sample's tokens carry its own domain
    cut = batch["cu_seq_lens_q"].tolist()
    for a, b in zip(cut, cut[1:]):
        assert len(set(batch["domain_ids"][0, a:b].tolist())) == 1
    ulysses = ACCCollator(trainer.data_collator.inner, padding_free=True, sequence_parallel=True)
    sp_batch = ulysses(rows)
    assert not any(k in sp_batch for k in (*VARLEN_KEYS, "seq_idx"))
    assert "position_ids" in sp_batch and "domain_ids" in sp_batch


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
ON_CUDA = dict(use_cpu=False, bf16=True)  # make_trainer's defaults are fp32 on CPU (the Trainer would move the model)


@cuda
def test_flash_attention_packed_logits_equal_per_sequence(tmp_path):
    pytest.importorskip("flash_attn")
    from acc_hf.tiny import tiny_model

    trainer = make_trainer(
        acc_rows(4, seed=1),
        tmp_path,
        model=tiny_model().to(torch.bfloat16),
        attn_backend="flash_attention_2",
        max_length=2048,
        **ON_CUDA,
    )
    assert trainer.attn_implementation == "flash_attention_2"
    model = trainer.model
    row = trainer.train_dataset[0]
    batch = {k: (v.cuda() if torch.is_tensor(v) else v) for k, v in trainer.data_collator([row]).items()}
    inputs = {k: batch[k] for k in ("input_ids", "position_ids", *VARLEN_KEYS)}
    with torch.no_grad():
        packed = model(**inputs).logits[0].float()
        separate, start = [], 0
        for n in row["seq_lengths"]:
            ids = batch["input_ids"][:, start : start + n]
            separate.append(model(input_ids=ids).logits[0].float())
            start += n
    torch.testing.assert_close(packed, torch.cat(separate), atol=3e-2, rtol=3e-2)  # bf16


@cuda
@pytest.mark.parametrize(
    "kernels",
    [{"attn_backend": "flash_attention_2"}, {"attn_backend": "sdpa", "use_liger_kernel": True}],
    ids=["flash_attention_2", "liger"],
)
def test_gpu_kernels_train_like_the_reference_path(tmp_path, kernels):
    """Three optimizer steps on the same packed rows from the same weights: FA2 varlen (instead of sdpa's
    block-diagonal mask) or Liger's layer kernels (instead of torch's) follow the reference losses (bf16)."""
    pytest.importorskip("liger_kernel" if kernels.get("use_liger_kernel") else "flash_attn")
    from acc_hf.tiny import tiny_model

    losses = {}
    for name, extra in (("reference", {"attn_backend": "sdpa"}), ("kernels", kernels)):
        trainer = make_trainer(
            acc_rows(12, seed=2),
            tmp_path / name,
            model=tiny_model(seed=0),
            max_length=2048,
            max_steps=3,
            logging_steps=1,
            learning_rate=1e-3,
            **ON_CUDA,
            **extra,
        )
        trainer.train()
        losses[name] = torch.tensor([h["loss"] for h in trainer.state.log_history if "loss" in h])
    assert trainer.kernel_plan.liger == bool(kernels.get("use_liger_kernel"))
    assert trainer.attn_implementation == kernels["attn_backend"]
    assert len(losses["kernels"]) == 3
    torch.testing.assert_close(losses["kernels"], losses["reference"], rtol=2e-2, atol=2e-2)


def test_label_positions_only_scoring_on_cpu_gives_the_same_loss_and_grads():
    """TRL scores every position on CPU; ACCTrainer makes it score only the labelled ones: same loss and gradients."""
    import trl.trainer.utils as trl_utils
    from trl.trainer.utils import add_fused_lm_head

    from acc_hf.kernels import score_label_positions_only_on_cpu
    from acc_hf.tiny import tiny_model

    ids = torch.randint(0, 8000, (1, 96), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :70] = -100  # a prompt-heavy row: 26 completion tokens, as in ACC records
    position_ids = torch.cat([torch.arange(40), torch.arange(56)])[None]  # two packed samples

    def loss_and_grads():
        model = tiny_model(seed=0)
        add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
        out = model(input_ids=ids, position_ids=position_ids, labels=labels, fused_lm_head=True)
        out.loss.backward()
        return out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    original = trl_utils._use_triton
    try:
        trl_utils._use_triton = getattr(original, "__wrapped__", original)
        if getattr(trl_utils._use_triton, "acc_label_positions_only", False):
            pytest.skip("TRL's original _use_triton is not reachable")
        assert not trl_utils._use_triton(torch.device("cpu"))  # TRL's own choice: score every position on CPU
        loss_all, grads_all = loss_and_grads()
        assert score_label_positions_only_on_cpu()
        assert trl_utils._use_triton(torch.device("cpu"))
        loss_compact, grads_compact = loss_and_grads()
    finally:
        trl_utils._use_triton = original
    torch.testing.assert_close(loss_compact, loss_all, atol=1e-6, rtol=0)
    assert grads_all.keys() == grads_compact.keys()
    for name in grads_all:
        torch.testing.assert_close(grads_compact[name], grads_all[name], atol=1e-6, rtol=1e-5, msg=name)
