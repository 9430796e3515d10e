"""Run-time choice of the attention and loss kernels for packed long-context training, and the checks that keep
packed samples from attending to each other.

Two paths, picked once per run and logged in one line:

* GPU (CUDA + ``flash-attn``): FlashAttention-2 varlen. TRL 1.16's padding-free collator already precomputes the
  sequence boundaries on CPU (``cu_seq_lens_q/k``, ``max_length_q/k``), and transformers' ``_flash_attention_forward``
  uses them as given instead of inferring them from ``position_ids`` in every layer. Nothing to add there; the batch
  check below makes sure they are present. The LM-head loss is TRL's fused LM head, which runs Triton tiles on CUDA
  (the same idea as Liger's fused linear cross-entropy: logits are never materialized). TRL refuses Liger's own
  fused linear cross-entropy because it replaces ``model.forward``; ``use_liger_kernel`` therefore brings Liger's
  layer kernels (RMSNorm, RoPE, SwiGLU) and TRL keeps the loss.
* Elsewhere: sdpa with the block-diagonal mask transformers builds from ``position_ids``
  (``masking_utils.find_packed_sequence_indices``) and TRL's fused LM head folded in torch tiles.

Packed rows are only isolated when the batch has ``position_ids`` restarting per sample, no ``attention_mask``, and
no KV cache: an all-ones mask or ``use_cache=True`` turns the block-diagonal detection off and samples attend to each
other silently. ``check_packed_batch`` enforces that on every training batch.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

ATTN_BACKENDS = ("auto", "flash_attention_2", "flash_attention_3", "sdpa", "eager")
VARLEN_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")


@dataclass
class KernelPlan:
    """What a run uses, and why."""

    attn_implementation: str  # value for `from_pretrained(attn_implementation=...)` / `model.set_attn_implementation`
    liger: bool  # Liger layer kernels (RMSNorm, RoPE, SwiGLU) applied by transformers at train start
    loss: str  # how the LM-head loss is computed
    packed_attention: str  # how packed samples are kept apart
    reason: str

    def describe(self) -> str:
        liger = "Liger layer kernels" if self.liger else "no Liger"
        return (
            f"kernels: attention={self.attn_implementation} ({self.packed_attention}); loss={self.loss}; {liger} "
            f"[{self.reason}]"
        )


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def flash_attn_available(version: int = 2) -> bool:
    from transformers.utils import is_flash_attn_2_available, is_flash_attn_3_available

    return cuda_available() and (is_flash_attn_2_available() if version == 2 else is_flash_attn_3_available())


def check_liger_available(use_cpu: bool = False) -> None:
    """Raise a ValueError that says what to do when Liger cannot run here (it needs CUDA, liger-kernel and triton).

    Without this check `use_liger_kernel=True` passes setup on a CPU machine and crashes at the first forward, after
    the model and the data were loaded (triton has no CPU driver).
    """
    missing = []
    if use_cpu:
        missing.append("use_cpu is set (Liger's Triton kernels have no CPU driver)")
    elif not cuda_available():
        missing.append("no CUDA device is visible (Liger's Triton kernels have no CPU driver)")
    if importlib.util.find_spec("liger_kernel") is None:
        missing.append("the liger-kernel package is not installed (pip install 'acc-hf[gpu]')")
    if importlib.util.find_spec("triton") is None:
        missing.append("triton is not installed")
    if missing:
        raise ValueError(
            "use_liger_kernel=True cannot run on this machine: "
            + "; ".join(missing)
            + ". Set `use_liger_kernel: false` (the loss still runs through TRL's fused LM head, which never builds "
            "the full logits), or run on a CUDA machine with liger-kernel installed."
        )


def select_kernels(attn_backend: str = "auto", use_liger_kernel: bool = False, use_cpu: bool = False) -> KernelPlan:
    """Choose the attention implementation and loss path for this machine (for a run on its CPU when `use_cpu`, as
    `TrainingArguments.use_cpu`); raise a clear error for impossible asks."""
    if attn_backend not in ATTN_BACKENDS:
        raise ValueError(f"attn_backend must be one of {ATTN_BACKENDS}, got {attn_backend!r}")
    if use_liger_kernel:
        check_liger_available(use_cpu)
    on_cuda = cuda_available() and not use_cpu
    if attn_backend == "auto":
        if on_cuda and flash_attn_available():
            attn, reason = "flash_attention_2", "auto: CUDA and flash-attn found"
        else:
            why = "use_cpu" if use_cpu else "flash-attn not installed" if on_cuda else "no CUDA device"
            attn, reason = "sdpa", f"auto: {why}"
    elif attn_backend.startswith("flash_attention"):
        version = int(attn_backend[-1])
        if not (on_cuda and flash_attn_available(version)):
            package = (
                "flash-attn package (pip install 'acc-hf[gpu]')"
                if version == 2
                else "FlashAttention-3 (Hopper) package"
            )
            raise ValueError(
                f"attn_backend={attn_backend!r} needs a CUDA device (and use_cpu off) and the {package}; use "
                "attn_backend='auto' to fall back to sdpa on this machine."
            )
        attn, reason = attn_backend, "requested"
    else:
        attn, reason = attn_backend, "requested"
    if attn.startswith("flash_attention"):
        packed = "varlen kernels, cu_seq_lens precomputed by the collator"
    else:
        packed = "block-diagonal mask built from position_ids"
    loss = (
        "TRL fused LM head, Triton tiles"
        if on_cuda and importlib.util.find_spec("triton")
        else "TRL fused LM head, torch tiles, label positions only"
    )
    return KernelPlan(attn, bool(use_liger_kernel), loss, packed, reason)


def score_label_positions_only_on_cpu() -> bool:
    """Make TRL's fused LM head score only the positions that carry a label on CPU too; True when installed.

    Without Triton, TRL 1.16 projects every position through the LM head (static tile shapes for XLA/Neuron
    compilers) and masks afterwards. Eager CPU has nothing to recompile, and an ACC row is mostly prompt, so scoring
    the label positions alone gives the same loss and gradients, much faster (measured on the tiny MoE, a
    4096-token row with 200 completion tokens: 1.24 s -> 0.25 s per step). TRL decides this through its module-level
    `_use_triton(device)`; it is wrapped, not replaced, so CUDA and other devices keep TRL's choice.
    """
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, "_use_triton", None)
    if original is None:  # TRL changed: keep its behaviour
        return False
    if getattr(original, "acc_label_positions_only", False):
        return True

    def use_compact_scoring(device) -> bool:
        return torch_device_type(device) == "cpu" or original(device)

    use_compact_scoring.acc_label_positions_only = True
    use_compact_scoring.__wrapped__ = original
    trl_utils._use_triton = use_compact_scoring
    return True


def torch_device_type(device) -> str:
    return getattr(device, "type", str(device).split(":")[0])


def check_packed_batch(batch: dict, attn_implementation: str, sequence_parallel: bool = False) -> None:
    """Fail loudly on a padding-free batch that would let packed samples attend to each other.

    transformers isolates the samples of a flattened row only when `position_ids` restart per sample and neither an
    `attention_mask` nor a KV cache is passed; FlashAttention-2 additionally gets the boundaries from the collator.
    """
    if "position_ids" not in batch:
        raise ValueError("padding-free batch without position_ids: packed samples could not be told apart")
    if batch.get("attention_mask") is not None:
        raise ValueError(
            "padding-free batch carries an attention_mask: transformers then skips packed-sequence detection and "
            "the packed samples attend to each other. Use TRL's padding-free collator (no custom data_collator)."
        )
    if batch.get("use_cache") or batch.get("past_key_values") is not None:
        raise ValueError("a KV cache turns packed-sequence masking off; training batches must run with use_cache=False")
    if attn_implementation.startswith("flash_attention") and not sequence_parallel:
        missing = [key for key in VARLEN_KEYS if batch.get(key) is None]
        if missing:
            raise ValueError(
                f"flash-attention padding-free batch lacks {missing}: the varlen kernel would infer the boundaries "
                "from position_ids in every layer (or not at all)"
            )


def drop_varlen_keys(batch: dict) -> dict:
    """Under DeepSpeed Ulysses the data loader adapter shards every tensor along dim 1, which a 1-D `cu_seq_lens`
    does not have; the Ulysses attention rebuilds the boundaries from the gathered `position_ids` instead."""
    for key in (*VARLEN_KEYS, "seq_idx"):
        batch.pop(key, None)
    return batch
