"""Run-time choice of the attention and loss kernels for packed long-context training, and the checks that keep
packed samples from attending to each other.

Attention, picked once per run and logged in one line (``attn_backend: auto`` takes the first that runs here):

* ``flash_attention_3`` / ``flash_attention_2`` (CUDA + the flash-attn package): FlashAttention varlen. TRL 1.16's
  padding-free collator precomputes the sequence boundaries on CPU (``cu_seq_lens_q/k``, ``max_length_q/k``) and
  transformers passes them to the kernel as given.
* ``torch_varlen`` (CUDA, torch >= 2.10, no package to build): the same boundaries through PyTorch's own
  FlashAttention varlen kernel, ``torch.nn.attention.varlen.varlen_attn`` (``acc_hf.varlen``). flash-attn is a
  source distribution on PyPI (a long CUDA build, or a wheel from outside PyPI); this path needs neither.
* ``flex_attention`` (torch >= 2.5): FlexAttention with a document mask (a BlockMask built from ``position_ids``),
  compiled; memory linear in the row length. It has no backward on CPU, so on CPU it is forward-only (analysis).
* ``sdpa`` / ``eager``: the block-diagonal mask transformers builds from ``position_ids``
  (``masking_utils.find_packed_sequence_indices``), dense T x T: the CPU path, and the last resort on a GPU.

The LM-head loss is TRL's fused LM head (Triton tiles on CUDA, torch tiles elsewhere: logits are never
materialized). TRL refuses Liger's own fused linear cross-entropy because it replaces ``model.forward``;
``use_liger_kernel`` therefore brings Liger's layer kernels (RMSNorm, RoPE, SwiGLU) and TRL keeps the loss.

Packed rows are only isolated when the batch has ``position_ids`` restarting per sample, no ``attention_mask``, and
no KV cache: an all-ones mask or ``use_cache=True`` turns the block-diagonal detection off and samples attend to each
other silently. ``check_packed_batch`` enforces that on every training batch.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

ATTN_BACKENDS = (
    "auto", "flash_attention_3", "flash_attention_2", "torch_varlen", "flex_attention", "sdpa", "eager",
)  # fmt: skip
AUTO_ON_CUDA = ("flash_attention_3", "flash_attention_2", "torch_varlen", "flex_attention", "sdpa")
VARLEN_IMPLEMENTATIONS = ("flash_attention_2", "flash_attention_3", "torch_varlen")  # take cu_seq_lens, no mask
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


def attention_unavailable(backend: str, use_cpu: bool = False, training: bool = True) -> str | None:
    """Why `backend` cannot run on this machine (for training, or forward only), or None when it can."""
    on_cuda = cuda_available() and not use_cpu
    if backend.startswith("flash_attention"):
        version = int(backend[-1])
        if not on_cuda:
            return "it needs a CUDA device (and use_cpu off)"
        if not flash_attn_available(version):
            if version == 2:
                return "the flash-attn package is not installed (pip install 'acc-hf[gpu]')"
            return "the FlashAttention-3 (Hopper) package is not installed"
        return None
    if backend == "torch_varlen":
        from acc_hf import varlen

        return varlen.unavailable_reason(use_cpu)
    if backend == "flex_attention":
        from transformers.utils import is_torch_flex_attn_available

        if not is_torch_flex_attn_available():
            return "this torch has no FlexAttention (torch >= 2.5)"
        if training and not on_cuda:
            return "FlexAttention has no backward on CPU (torch raises at the first backward); it runs forward only"
        return None
    if backend in ("sdpa", "eager"):
        return None
    raise ValueError(f"attn_backend must be one of {ATTN_BACKENDS}, got {backend!r}")


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
    """Choose the attention implementation and loss path for training on this machine (on its CPU when `use_cpu`, as
    `TrainingArguments.use_cpu`); raise a clear error for impossible asks. `torch_varlen` is registered with
    transformers when chosen."""
    if attn_backend not in ATTN_BACKENDS:
        raise ValueError(f"attn_backend must be one of {ATTN_BACKENDS}, got {attn_backend!r}")
    if use_liger_kernel:
        check_liger_available(use_cpu)
    on_cuda = cuda_available() and not use_cpu
    if attn_backend == "auto":
        if on_cuda:
            skipped = []
            for candidate in AUTO_ON_CUDA:
                why_not = attention_unavailable(candidate, use_cpu)
                if why_not is None:
                    break
                skipped.append(f"{candidate}: {why_not}")
            attn, reason = candidate, "; ".join(["auto on CUDA", *skipped])
        else:
            attn, reason = "sdpa", f"auto: {'use_cpu' if use_cpu else 'no CUDA device'}"
    else:
        why_not = attention_unavailable(attn_backend, use_cpu)
        if why_not is not None:
            raise ValueError(
                f"attn_backend={attn_backend!r} cannot run on this machine: {why_not}. Use attn_backend='auto' to "
                "take the best attention this machine has."
            )
        attn, reason = attn_backend, "requested"
    if attn == "torch_varlen":
        from acc_hf import varlen

        varlen.register()
    if attn in VARLEN_IMPLEMENTATIONS:
        packed = "varlen kernel, cu_seq_lens precomputed by the collator"
    elif attn == "flex_attention":
        packed = "document BlockMask built from position_ids"
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
    `attention_mask` nor a KV cache is passed; the varlen kernels additionally get the boundaries from the collator.
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
    if attn_implementation in VARLEN_IMPLEMENTATIONS and not sequence_parallel:
        missing = [key for key in VARLEN_KEYS if batch.get(key) is None]
        if missing:
            raise ValueError(
                f"{attn_implementation} padding-free batch lacks {missing}: the varlen kernel would infer the "
                "boundaries from position_ids in every layer (or not at all)"
            )


def drop_varlen_keys(batch: dict) -> dict:
    """Under DeepSpeed Ulysses the data loader adapter shards every tensor along dim 1, which a 1-D `cu_seq_lens`
    does not have; the Ulysses attention rebuilds the boundaries from the gathered `position_ids` instead."""
    for key in (*VARLEN_KEYS, "seq_idx"):
        batch.pop(key, None)
    return batch
