"""Where the MoE parts of a transformers model are: the plain model inside its wrappers, its routers, and what a
router returns. Used by the router telemetry (`acc_hf.router_stats`) and the analysis (`acc_hf.analysis`)."""

from __future__ import annotations

import re

import torch
from torch import nn

_LAYER_INDEX = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain transformers model inside DDP / FSDP1 (``.module``) and PEFT (``.base_model.model``) wrappers."""
    while True:
        if hasattr(model, "get_base_model"):  # PEFT PeftModel
            inner = model.get_base_model()
        elif isinstance(getattr(model, "module", None), nn.Module):  # DDP, FSDP1, DeepSpeed engine
            inner = model.module
        else:
            return model
        if inner is model:
            return model
        model = inner


def router_classes(model: nn.Module) -> tuple[type, ...]:
    """Router classes the model itself declares for ``output_router_logits`` (Qwen2/3-MoE, Mixtral, OLMoE, ...)."""
    classes = set()
    for module in model.modules():
        recorder = (getattr(type(module), "_can_record_outputs", None) or {}).get("router_logits")
        target = getattr(recorder, "target_class", recorder)
        if isinstance(target, type):
            classes.add(target)
    return tuple(classes)


def num_experts(model: nn.Module) -> int | None:
    """Experts per MoE layer, from the (text) config; None for a dense model."""
    config = getattr(unwrap_model(model), "config", None)
    config = getattr(config, "text_config", None) or config
    return getattr(config, "num_experts", None) or getattr(config, "num_local_experts", None)


def router_output(output) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(router logits [N, E], top-k expert indices [N, k] or None) from what a router module returns: a
    Qwen3-MoE-style (logits, weights, indices) tuple, or bare logits (an nn.Linear gate)."""
    if isinstance(output, (tuple, list)):
        return output[0], output[2] if len(output) > 2 else None
    return output, None


def find_routers(model: nn.Module) -> list[tuple[int, nn.Module]]:
    """(decoder layer index, router module) for each MoE layer, in layer order; [] for a dense model.

    A router is a module of the class the model records as ``router_logits`` (it returns (logits, top-k weights,
    top-k indices)), or, for older MoE code, an ``nn.Linear`` named ``...gate`` with one output per expert.
    """
    classes = router_classes(model)
    n_experts = num_experts(model)
    found = []
    for name, module in model.named_modules():
        is_router = bool(classes) and isinstance(module, classes)
        is_linear_gate = (
            isinstance(module, nn.Linear) and name.split(".")[-1] == "gate" and module.out_features == n_experts
        )
        if is_router or is_linear_gate:
            match = _LAYER_INDEX.search(name)
            found.append((int(match.group(1)) if match else len(found), module))
    return sorted(found, key=lambda pair: pair[0])
