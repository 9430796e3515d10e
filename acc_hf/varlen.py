"""FlashAttention varlen without the flash-attn package: PyTorch's own `torch.nn.attention.varlen.varlen_attn`
(torch >= 2.10, CUDA, sm80+) registered as the transformers attention implementation ``"torch_varlen"``.

TRL's padding-free collator already gives every packed row its sequence boundaries (``cu_seq_lens_q/k``,
``max_length_q/k``, computed on CPU); transformers forwards them to the attention function, which hands them to the
kernel as they are: no mask is built (a block-diagonal T x T mask is 16 GiB at 128k tokens), no boundary is
recomputed per layer, and no sample attends to another. Without them (a plain batch, generation's prefill) the
boundaries come from ``position_ids`` or the padding mask, at the cost of one device sync.

The kernel's signature changed between releases: torch 2.10 has ``is_causal`` and neither ``scale`` nor
``window_size``; later releases take ``window_size`` (causal = ``(-1, 0)``) and ``scale``, and ``enable_gqa`` came
after that. `varlen_attention_forward` adapts to the one installed: grouped-query K/V heads are repeated where the
kernel cannot share them, a non-default scale is folded into the query, and a sliding window is refused where the
kernel has none.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

NAME = "torch_varlen"
MIN_CAPABILITY = (8, 0)  # PyTorch's FlashAttention kernels need Ampere or newer


def varlen_kernel() -> Callable | None:
    """PyTorch's `varlen_attn`, or None when this torch has none (it was added in torch 2.10)."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


@dataclass(frozen=True)
class KernelFeatures:
    """What the installed `varlen_attn` accepts (keyword arguments of its signature)."""

    window_size: bool  # (left, right) window; causal is (-1, 0)
    is_causal: bool  # torch 2.10's causal flag (no window_size there)
    scale: bool
    enable_gqa: bool

    @classmethod
    def of(cls, kernel: Callable) -> KernelFeatures:
        names = set(inspect.signature(kernel).parameters)
        return cls(*(name in names for name in ("window_size", "is_causal", "scale", "enable_gqa")))


def unavailable_reason(use_cpu: bool = False) -> str | None:
    """Why `torch_varlen` cannot run on this machine, or None when it can."""
    if varlen_kernel() is None:
        return f"torch {torch.__version__} has no torch.nn.attention.varlen (added in torch 2.10)"
    if use_cpu:
        return "use_cpu is set (varlen_attn is a CUDA kernel)"
    if not torch.cuda.is_available():
        return "no CUDA device is visible (varlen_attn is a CUDA kernel)"
    if torch.version.hip is None and torch.cuda.get_device_capability() < MIN_CAPABILITY:
        major, minor = torch.cuda.get_device_capability()
        return f"the GPU is sm{major}{minor}; PyTorch's FlashAttention kernels need sm80 (Ampere) or newer"
    return None


def register() -> None:
    """Make ``attn_implementation="torch_varlen"`` known to transformers (idempotent). The mask function is
    FlashAttention's: no mask for padding-free rows, the 2-D padding mask otherwise (so padding is honoured)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, flash_attention_mask

    AttentionInterface.register(NAME, varlen_attention_forward)
    if NAME not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionMaskInterface.register(NAME, flash_attention_mask)


def sequence_boundaries(
    batch: int, length: int, attention_mask: torch.Tensor | None, kwargs: dict, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, int, int]:
    """(token index to keep or None, cu_seq_q, cu_seq_k, max_q, max_k) for the flattened [batch * length] tokens."""
    if attention_mask is not None:  # padded batch: keep the real tokens, one sequence per row
        mask = attention_mask[:, -length:].to(device=device, dtype=torch.bool)
        keep = mask.reshape(-1).nonzero().squeeze(1)
        cu = torch.nn.functional.pad(mask.sum(1, dtype=torch.int32).cumsum(0, dtype=torch.int32), (1, 0))
        longest = int(cu.diff().max())
        return keep, cu, cu, longest, longest
    if kwargs.get("cu_seq_lens_q") is not None:  # TRL's padding-free collator: precomputed on CPU
        if batch != 1:
            raise ValueError(f"cu_seq_lens_q describes one flattened row, but the batch has {batch} rows")
        cu_q = kwargs["cu_seq_lens_q"].to(device=device, dtype=torch.int32)
        cu_k = kwargs.get("cu_seq_lens_k")
        cu_k = cu_q if cu_k is None else cu_k.to(device=device, dtype=torch.int32)
        max_q = int(kwargs.get("max_length_q") or cu_q.diff().max())
        return None, cu_q, cu_k, max_q, int(kwargs.get("max_length_k") or max_q)
    # No boundaries given: every row is a sequence, and position_ids restarting at 0 split a row into packed samples.
    starts = torch.zeros(batch, length, dtype=torch.bool, device=device)
    starts[:, 0] = True
    position_ids = kwargs.get("position_ids")
    if position_ids is not None:
        starts |= position_ids.to(device).expand(batch, -1) == 0
    begin = starts.reshape(-1).nonzero().squeeze(1)
    cu = torch.cat([begin, torch.tensor([batch * length], device=device)]).to(torch.int32)
    longest = int(cu.diff().max())
    return None, cu, cu, longest, longest


def varlen_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    sliding_window: int | None = None,
    softcap: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """A transformers attention function (query/key/value [batch, heads, tokens, head_dim]) over `varlen_attn`;
    returns ([batch, tokens, heads, head_dim], None) like the other implementations."""
    kernel = varlen_kernel()
    if kernel is None:
        raise RuntimeError(unavailable_reason())
    if dropout:
        raise ValueError(f"attn_implementation {NAME!r} has no attention dropout (got {dropout}); set it to 0")
    if softcap:
        raise ValueError(f"attn_implementation {NAME!r} has no logit softcapping; use flash_attention_2 or eager")
    batch, n_heads, q_len, head_dim = query.shape
    n_kv_heads, kv_len = key.shape[1], key.shape[2]
    if q_len != kv_len:
        raise ValueError(
            f"attn_implementation {NAME!r} is a training kernel: it got {q_len} queries for {kv_len} keys (a KV cache); "
            "generate with sdpa or flash_attention_2"
        )
    features = KernelFeatures.of(kernel)
    causal = module.is_causal if is_causal is None else is_causal
    keep, cu_q, cu_k, max_q, max_k = sequence_boundaries(batch, q_len, attention_mask, kwargs, query.device)

    def tokens(x: torch.Tensor) -> torch.Tensor:  # [batch, heads, T, D] -> [batch * T (kept), heads, D]
        flat = x.transpose(1, 2).reshape(batch * x.shape[2], x.shape[1], x.shape[3])
        return flat if keep is None else flat.index_select(0, keep)

    q, k, v = tokens(query), tokens(key), tokens(value)
    dtype = q.dtype
    if q.is_cuda and dtype not in (torch.float16, torch.bfloat16):  # FlashAttention runs in half precision only
        half = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else torch.bfloat16
        q, k, v = q.to(half), k.to(half), v.to(half)
    options = {}
    if n_kv_heads != n_heads:
        if features.enable_gqa:
            options["enable_gqa"] = True
        else:  # query head h reads K/V head h // group, as transformers' repeat_kv lays them out
            k = k.repeat_interleave(n_heads // n_kv_heads, dim=1)
            v = v.repeat_interleave(n_heads // n_kv_heads, dim=1)
    default_scale = 1.0 / math.sqrt(head_dim)
    if scaling is not None and not math.isclose(scaling, default_scale):
        if features.scale:
            options["scale"] = scaling
        else:
            q = q * (scaling / default_scale)
    if features.window_size:
        left = sliding_window - 1 if sliding_window else -1
        options["window_size"] = (left, 0) if causal else (left, left)
    else:
        if sliding_window:
            raise ValueError(
                f"this torch's varlen_attn has no window_size: the model's sliding window of {sliding_window} "
                "cannot be applied; use flash_attention_2 or a newer torch"
            )
        options["is_causal"] = bool(causal)
    out = kernel(q, k, v, cu_q, cu_k, max_q, max_k, **options).to(dtype)
    if keep is not None:
        full = out.new_zeros(batch * q_len, n_heads, out.shape[-1])
        out = full.index_copy_(0, keep, out)
    return out.reshape(batch, q_len, n_heads, out.shape[-1]), None
