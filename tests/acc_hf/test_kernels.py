"""Kernel selection on this machine and on simulated ones, the up-front Liger check, the torch_varlen attention
function (against a reference implementation of varlen_attn's contract on CPU; the real kernel on CUDA), and the
collator additions (domain ids, Ulysses)."""

from __future__ import annotations

import logging
import math

import pytest
import torch
import transformers.utils
from acc_train_data import acc_rows, make_trainer

from acc_hf import varlen
from acc_hf.acc_trainer import ACCCollator
from acc_hf.kernels import VARLEN_KEYS, attention_unavailable, check_liger_available, select_kernels

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")


@no_cuda
def test_cpu_selects_sdpa_and_refuses_gpu_only_attention_with_the_reason():
    plan = select_kernels("auto")
    assert plan.attn_implementation == "sdpa"
    assert "block-diagonal" in plan.packed_attention and "torch tiles" in plan.loss and not plan.liger
    assert "no CUDA" in plan.describe()
    assert select_kernels("eager").attn_implementation == "eager"
    with pytest.raises(ValueError, match="'flash_attention_2' cannot run on this machine: it needs a CUDA device"):
        select_kernels("flash_attention_2")
    with pytest.raises(ValueError, match="'flash_attention_3' cannot run.*CUDA.*attn_backend='auto'"):
        select_kernels("flash_attention_3")
    with pytest.raises(ValueError, match="'torch_varlen' cannot run on this machine: no CUDA device.*CUDA kernel"):
        select_kernels("torch_varlen")
    with pytest.raises(ValueError, match="'flex_attention' cannot run.*no backward on CPU"):
        select_kernels("flex_attention")
    assert attention_unavailable("flex_attention", training=False) is None  # forward (analysis) runs on CPU
    with pytest.raises(ValueError, match="attn_backend must be one of"):
        select_kernels("flex")


def simulate_gpu(monkeypatch, capability=(9, 0), flash_attn=(False, False), torch_varlen=True):
    """This process sees a CUDA device of `capability`, with or without the flash-attn 2 / 3 packages, and a torch
    with or without varlen_attn: the hardware and package edge, so that selection can be checked on a CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(transformers.utils, "is_flash_attn_2_available", lambda: flash_attn[0])
    monkeypatch.setattr(transformers.utils, "is_flash_attn_3_available", lambda: flash_attn[1])
    if not torch_varlen:
        monkeypatch.setattr(varlen, "varlen_kernel", lambda: None)


def test_auto_on_cuda_prefers_flash_attn_then_torch_varlen_then_flex(monkeypatch):
    simulate_gpu(monkeypatch, flash_attn=(True, True))
    assert select_kernels("auto").attn_implementation == "flash_attention_3"
    simulate_gpu(monkeypatch, flash_attn=(True, False))
    assert select_kernels("auto").attn_implementation == "flash_attention_2"
    simulate_gpu(monkeypatch)  # no flash-attn package: PyTorch's own varlen kernel
    plan = select_kernels("auto")
    assert plan.attn_implementation == "torch_varlen" and plan.packed_attention.startswith("varlen kernel")
    assert "flash_attention_2: the flash-attn package is not installed" in plan.reason
    assert select_kernels("torch_varlen").reason == "requested"
    simulate_gpu(monkeypatch, capability=(7, 5))  # Turing: no FlashAttention in torch
    plan = select_kernels("auto")
    assert plan.attn_implementation == "flex_attention" and "BlockMask" in plan.packed_attention
    assert "torch_varlen: the GPU is sm75" in plan.reason
    with pytest.raises(ValueError, match="sm75.*sm80"):
        select_kernels("torch_varlen")
    simulate_gpu(monkeypatch, torch_varlen=False)  # torch < 2.10
    assert select_kernels("auto").attn_implementation == "flex_attention"
    with pytest.raises(ValueError, match=r"has no torch.nn.attention.varlen \(added in torch 2.10\)"):
        select_kernels("torch_varlen")
    assert select_kernels("auto", use_cpu=True).attn_implementation == "sdpa"  # a CPU run on a GPU machine


def test_torch_varlen_is_registered_with_transformers_when_chosen(monkeypatch):
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    from acc_hf.tiny import tiny_model

    simulate_gpu(monkeypatch)
    select_kernels("torch_varlen")
    assert AttentionInterface._global_mapping["torch_varlen"] is varlen.varlen_attention_forward
    assert "torch_varlen" in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping  # padding masks still reach it
    model = tiny_model()
    model.set_attn_implementation("torch_varlen")
    assert model.config._attn_implementation == "torch_varlen"


@no_cuda
def test_liger_without_gpu_fails_up_front_with_a_clear_message():
    with pytest.raises(ValueError, match="use_liger_kernel=True cannot run on this machine: no CUDA device") as err:
        check_liger_available()
    assert "use_liger_kernel: false" in str(err.value)


# ---- torch_varlen's attention function on CPU, against a reference of varlen_attn's documented contract -------------


def reference_varlen_attn(
    q, k, v, cu_seq_q, cu_seq_k, max_q, max_k, *, scale=None, window_size=(-1, -1), enable_gqa=False
):
    """What torch.nn.attention.varlen.varlen_attn (torch 2.12+) computes, written out per sequence in fp32: q, k, v
    [tokens, heads, dim]; window (left, right), causal = (-1, 0). Checks the arguments the way the kernel needs them."""
    assert cu_seq_q.dtype == cu_seq_k.dtype == torch.int32 and isinstance(max_q, int) and isinstance(max_k, int)
    assert isinstance(window_size, tuple)
    lengths_q, lengths_k = cu_seq_q.diff(), cu_seq_k.diff()
    assert int(lengths_q.max()) <= max_q and int(lengths_k.max()) <= max_k
    assert enable_gqa or k.shape[1] == q.shape[1], "K/V heads must match query heads unless enable_gqa"
    out = torch.empty_like(q)
    for i in range(len(cu_seq_q) - 1):
        a, b, c, d = int(cu_seq_q[i]), int(cu_seq_q[i + 1]), int(cu_seq_k[i]), int(cu_seq_k[i + 1])
        qs, ks, vs = q[a:b].transpose(0, 1), k[c:d].transpose(0, 1), v[c:d].transpose(0, 1)
        ks = ks.repeat_interleave(q.shape[1] // k.shape[1], 0)
        vs = vs.repeat_interleave(q.shape[1] // k.shape[1], 0)
        scores = qs @ ks.transpose(1, 2) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
        rows, cols = torch.arange(b - a)[:, None], torch.arange(d - c)[None]
        allowed = torch.ones(b - a, d - c, dtype=torch.bool)
        if window_size[0] >= 0:
            allowed &= cols >= rows - window_size[0]
        if window_size[1] >= 0:
            allowed &= cols <= rows + window_size[1]
        out[a:b] = (scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ vs).transpose(0, 1)
    return out


def reference_varlen_attn_torch_2_10(q, k, v, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False, return_aux=None):
    """torch 2.10's signature: a causal flag, no scale, no window, no grouped-query heads."""
    return reference_varlen_attn(q, k, v, cu_seq_q, cu_seq_k, max_q, max_k, window_size=(-1, 0 if is_causal else -1))


def packed_row(lengths: list[int], seed: int = 0) -> dict:
    """One padding-free row as TRL's collator builds it: ids, position_ids restarting per sample, cu_seq_lens."""
    ids = torch.randint(16, 8000, (1, sum(lengths)), generator=torch.Generator().manual_seed(seed))
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    position_ids = torch.cat([torch.arange(n) for n in lengths])[None]
    return {"input_ids": ids, "position_ids": position_ids, "cu_seq_lens_q": cu, "cu_seq_lens_k": cu,
            "max_length_q": max(lengths), "max_length_k": max(lengths)}  # fmt: skip


def per_sequence_logits(model, row: dict, lengths: list[int]) -> torch.Tensor:
    out, start = [], 0
    for n in lengths:
        out.append(model(input_ids=row["input_ids"][:, start : start + n]).logits[0])
        start += n
    return torch.cat(out)


@pytest.mark.parametrize("kernel", [reference_varlen_attn, reference_varlen_attn_torch_2_10], ids=["2.12", "2.10"])
def test_torch_varlen_attention_matches_sdpa_on_packed_padded_and_plain_batches(monkeypatch, kernel):
    """The adapter (layouts, boundaries from the collator / position_ids / a padding mask, grouped-query heads,
    causality, scale) gives the sdpa model's logits, for both signatures of varlen_attn."""
    from acc_hf.tiny import tiny_model

    monkeypatch.setattr(varlen, "varlen_kernel", lambda: kernel)
    varlen.register()
    model = tiny_model(seed=0).eval()  # 4 query heads, 2 K/V heads
    lengths = [37, 64, 23]
    row = packed_row(lengths)
    with torch.no_grad():
        reference = per_sequence_logits(model, row, lengths)  # sdpa, one sequence at a time
        padded_ids = torch.full((2, 64), 0)
        padded_ids[0, :37], padded_ids[1] = row["input_ids"][0, :37], row["input_ids"][0, 37:101]
        padding = torch.zeros(2, 64, dtype=torch.long)
        padding[0, :37], padding[1] = 1, 1
        sdpa_padded = model(input_ids=padded_ids, attention_mask=padding).logits
        model.set_attn_implementation("torch_varlen")
        packed = model(**row).logits[0]
        from_positions = model(input_ids=row["input_ids"], position_ids=row["position_ids"]).logits[0]
        varlen_padded = model(input_ids=padded_ids, attention_mask=padding).logits
    torch.testing.assert_close(packed, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(from_positions, reference, atol=1e-5, rtol=1e-5)
    real = padding.bool()
    torch.testing.assert_close(varlen_padded[real], sdpa_padded[real], atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        as_one_sequence = model(input_ids=row["input_ids"]).logits[0]  # no boundaries: the samples see each other
    assert (as_one_sequence - reference).abs().max() > 1e-2


def test_torch_varlen_sliding_window_and_its_refusal_on_torch_2_10(monkeypatch):
    from acc_hf.tiny import tiny_model

    model = tiny_model(seed=1, use_sliding_window=True, sliding_window=8).eval()
    lengths = [30, 19]
    row = packed_row(lengths, seed=1)
    with torch.no_grad():
        reference = per_sequence_logits(model, row, lengths)  # sdpa with transformers' sliding-window mask
        monkeypatch.setattr(varlen, "varlen_kernel", lambda: reference_varlen_attn)
        varlen.register()
        model.set_attn_implementation("torch_varlen")
        torch.testing.assert_close(model(**row).logits[0], reference, atol=1e-5, rtol=1e-5)
        monkeypatch.setattr(varlen, "varlen_kernel", lambda: reference_varlen_attn_torch_2_10)
        with pytest.raises(ValueError, match="no window_size: the model's sliding window of 8 cannot be applied"):
            model(**row)
        with pytest.raises(ValueError, match=r"training kernel: it got 1 queries for \d+ keys"):
            model(input_ids=row["input_ids"][:, :1], past_key_values=_cache_of(model, 49), use_cache=True)


def _cache_of(model, n: int):
    from transformers import DynamicCache

    model.set_attn_implementation("sdpa")
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(input_ids=torch.randint(16, 8000, (1, n)), past_key_values=cache, use_cache=True)
    model.set_attn_implementation("torch_varlen")
    return cache


def test_a_cpu_run_never_gets_gpu_kernels_even_on_a_gpu_machine(tmp_path):
    """use_cpu=True: sdpa (never FA2, which has no CPU kernel), and Liger is refused before any data is touched."""
    assert select_kernels("auto", use_cpu=True).attn_implementation == "sdpa"
    with pytest.raises(ValueError, match="use_cpu off"):
        select_kernels("flash_attention_2", use_cpu=True)
    with pytest.raises(ValueError, match="use_cpu is set"):
        select_kernels("torch_varlen", use_cpu=True)
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
@pytest.mark.parametrize(
    "kernels",
    [
        {"attn_backend": "torch_varlen"},
        {"attn_backend": "flex_attention"},
        {"attn_backend": "flash_attention_2"},
        {"attn_backend": "sdpa", "use_liger_kernel": True},
    ],
    ids=["torch_varlen", "flex_attention", "flash_attention_2", "liger"],
)
def test_gpu_kernels_train_like_the_reference_path(tmp_path, kernels):
    """Three optimizer steps on the same packed rows from the same weights: a varlen or flex kernel (instead of
    sdpa's block-diagonal mask) or Liger's layer kernels (instead of torch's) follow the reference losses (bf16)."""
    why_not = attention_unavailable(kernels["attn_backend"])
    if why_not:
        pytest.skip(f"{kernels['attn_backend']}: {why_not}")
    if kernels.get("use_liger_kernel"):
        pytest.importorskip("liger_kernel")
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
