"""MoE router telemetry: per-layer expert load, imbalance, routing entropy and dead experts, logged while training.

Forward hooks on each router (Qwen3-MoE: ``model.model.layers[i].mlp.gate``) accumulate raw counts over a logging
window: top-k assignments per expert, the sum of router probabilities per expert (softmax of the logits, as
``load_balancing_loss_func`` uses), the sum of per-token routing entropies, and the number of real tokens.
Keeping counts (not fractions) makes the cross-process reduction exact: ``all_reduce`` sums them.

What is counted, and what is not:

* Padding: ``set_token_mask(attention_mask)`` before each forward; positions where the mask is False are skipped.
  ``None`` (packed / padding-free batches) counts every token.
* Activation checkpointing recomputes the forward during backward, so a router hook fires twice per micro-batch.
  Recomputation runs inside the autograd engine, where ``torch._C._current_graph_task_id()`` is not -1 (the test
  that ``torch.utils.checkpoint`` itself relies on), so those calls are skipped: reentrant and non-reentrant alike.
* Evaluation is skipped: hooks only count while the router is in training mode (``model.eval()`` turns that off).

Metrics (``compute()``), with f = a layer's load fractions (its expert shares of all top-k assignments, summing to 1):

* ``router/layer{i}/max_load``: max(f) / mean(f) (1.0 = perfectly balanced); ``cv``: std(f) / mean(f) (population
  std); ``entropy``: mean per-token entropy of the router softmax, in nats (max ln E); ``dead_experts``: experts that
  got no token in the window.
* ``router/max_over_mean``: the worst layer's max_load; ``router/cv`` and ``router/entropy``: means over layers;
  ``router/dead_experts``: total over layers; ``router/tokens``: real tokens in the window (all processes);
  ``router/balance_loss``: the Switch-Transformer balance loss over the window exactly as
  ``load_balancing_loss_func`` computes it (before ``router_aux_loss_coef``): for a single forward it equals the
  model's ``aux_loss``.

How a trainer uses it (``RouterStatsCallback``):

1. ``callback.set_token_mask(inputs.get("attention_mask"))`` before the model forward of every training micro-batch.
2. In ``Trainer.log`` override, for training logs (``self.model.training``, TRL's rule), ``logs.update(callback.metrics())``
   before ``super().log(logs)``. Trainer.log copies ``logs`` into ``state.log_history`` and runs the reporting
   integrations (TensorBoard, W&B, ...) before user callbacks' ``on_log``, so ``on_log`` is too late for them. Without
   that override ``on_log`` still adds the ``router/`` scalars to ``logs`` and to ``state.log_history`` (so a plain
   ``transformers.Trainer`` records them), but integrations registered before this callback miss them.
3. ``on_save`` writes ``router_load.png`` (layers x experts heatmap) and ``router_stats.json`` into
   ``<output_dir>/checkpoint-<step>/``; ``summary()`` gives cumulative statistics (through the last log) for the card.

``metrics()``, ``on_log`` and ``on_save`` run a collective when torch.distributed is initialized: call them on every
process (Trainer does). ``summary()`` does not, so rank 0 may call it alone.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import TrainerCallback

from acc_hf.moe import find_routers, num_experts, router_output, unwrap_model

logger = logging.getLogger(__name__)


@dataclass
class RouterCounts:
    """Raw per-layer sums; adding two of them is exact (integers for the counts)."""

    assignments: torch.Tensor  # [layers, experts] int64: top-k assignments of real tokens
    prob_sum: torch.Tensor  # [layers, experts] float64: sum of router softmax probabilities over real tokens
    entropy_sum: torch.Tensor  # [layers] float64: sum of per-token routing entropies (nats)
    tokens: torch.Tensor  # [layers] int64: real tokens seen

    @classmethod
    def zeros(cls, n_layers: int, n_experts: int, device="cpu") -> RouterCounts:
        return cls(
            torch.zeros(n_layers, n_experts, dtype=torch.int64, device=device),
            torch.zeros(n_layers, n_experts, dtype=torch.float64, device=device),
            torch.zeros(n_layers, dtype=torch.float64, device=device),
            torch.zeros(n_layers, dtype=torch.int64, device=device),
        )

    def to(self, device) -> RouterCounts:
        return RouterCounts(*(t.to(device) for t in self._tensors()))

    def __add__(self, other: RouterCounts) -> RouterCounts:
        return RouterCounts(*(a + b.to(a.device) for a, b in zip(self._tensors(), other._tensors())))

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return self.assignments, self.prob_sum, self.entropy_sum, self.tokens


def load_fractions(counts: RouterCounts) -> torch.Tensor:
    """[layers, experts] share of each layer's top-k assignments that went to each expert (rows sum to 1)."""
    assignments = counts.assignments.double().cpu()
    return assignments / assignments.sum(dim=1, keepdim=True).clamp_min(1)


def router_metrics(layers: list[int], counts: RouterCounts) -> dict[str, float]:
    """The ``router/...`` scalars for a set of counts ({} when it holds no token)."""
    tokens = counts.tokens.cpu()
    if int(tokens.sum()) == 0:
        return {}
    assignments = counts.assignments.cpu()
    fractions = load_fractions(counts)
    n_experts = fractions.shape[1]
    max_load = fractions.max(dim=1).values * n_experts  # mean fraction is 1 / n_experts
    cv = fractions.std(dim=1, unbiased=False) * n_experts
    entropy = counts.entropy_sum.cpu() / tokens.clamp_min(1)
    dead = (assignments == 0).sum(dim=1)
    out: dict[str, float] = {}
    for row, layer in enumerate(layers):
        out[f"router/layer{layer}/max_load"] = float(max_load[row])
        out[f"router/layer{layer}/cv"] = float(cv[row])
        out[f"router/layer{layer}/entropy"] = float(entropy[row])
        out[f"router/layer{layer}/dead_experts"] = int(dead[row])
    # load_balancing_loss_func pools all layers: tokens_per_expert and router_prob_per_expert over the total rows.
    total_rows = float(tokens.sum())
    per_expert_assign = assignments.sum(dim=0).double() / total_rows
    per_expert_prob = counts.prob_sum.cpu().sum(dim=0) / total_rows
    out["router/max_over_mean"] = float(max_load.max())
    out["router/cv"] = float(cv.mean())
    out["router/entropy"] = float(entropy.mean())
    out["router/dead_experts"] = int(dead.sum())
    out["router/tokens"] = int(tokens.max())
    out["router/balance_loss"] = float((per_expert_assign * per_expert_prob).sum() * n_experts)
    return out


class RouterStats:
    """Hooks on every router of ``model`` that accumulate ``RouterCounts`` for the current window."""

    def __init__(self, model: nn.Module):
        self.routers = find_routers(model)
        self.layers = [layer for layer, _ in self.routers]
        n_experts = num_experts(model)
        config = getattr(unwrap_model(model), "config", None)
        self.top_k = getattr(getattr(config, "text_config", None) or config, "num_experts_per_tok", None)
        self.n_experts = n_experts or (self.routers[0][1].weight.shape[0] if self.routers else 0)
        self._mask: torch.Tensor | None = None
        self._mask_on_device: dict[torch.device, torch.Tensor] = {}
        self._handles = [router.register_forward_hook(self._hook(row)) for row, (_, router) in enumerate(self.routers)]
        self.window = RouterCounts.zeros(len(self.routers), self.n_experts)

    def reset(self) -> None:
        """Start a new window (on the device the hooks accumulate on)."""
        self.window = RouterCounts.zeros(len(self.routers), self.n_experts, self.window.assignments.device)

    def remove(self) -> None:
        """Detach the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def set_token_mask(self, mask: torch.Tensor | None) -> None:
        """Real-token mask [batch, seq] (e.g. the attention_mask) for the next forwards; None = all tokens real."""
        self._mask = None if mask is None else mask.detach().reshape(-1).bool()
        self._mask_on_device = {}

    def _token_weights(self, n_tokens: int, device: torch.device) -> torch.Tensor | None:
        if self._mask is None:
            return None
        if self._mask.numel() != n_tokens:
            raise ValueError(
                f"router saw {n_tokens} tokens but the token mask has {self._mask.numel()} entries: call "
                "set_token_mask with the attention_mask of the batch being forwarded (None for packed batches)"
            )
        if device not in self._mask_on_device:
            self._mask_on_device[device] = self._mask.to(device)
        return self._mask_on_device[device]

    def _hook(self, row: int):
        def hook(module: nn.Module, args, output) -> None:
            # Skip evaluation, and activation-checkpointing recomputation (it runs inside the backward pass).
            if not module.training or torch._C._current_graph_task_id() != -1:
                return
            with torch.no_grad():
                self._record(row, *router_output(output))

        return hook

    def _record(self, row: int, logits: torch.Tensor, indices: torch.Tensor | None) -> None:
        logits = logits.detach().float().reshape(-1, logits.shape[-1])
        if indices is None:  # router returns logits only (nn.Linear gate): route as the MoE block does
            indices = torch.topk(logits.softmax(dim=-1), self.top_k, dim=-1).indices
        indices = indices.reshape(logits.shape[0], -1)
        if self.window.assignments.device != logits.device:
            self.window = self.window.to(logits.device)
        # Padding is weighted out (0/1) rather than indexed away: boolean indexing would sync the GPU every layer.
        mask = self._token_weights(logits.shape[0], logits.device)
        weight = torch.ones(logits.shape[0], device=logits.device) if mask is None else mask.float()
        probs = logits.softmax(dim=-1)
        entropy = torch.special.entr(probs).sum(dim=-1)
        window = self.window
        per_assignment = weight.long()[:, None].expand_as(indices).reshape(-1)
        window.assignments[row].scatter_add_(0, indices.reshape(-1), per_assignment)
        window.prob_sum[row] += (probs * weight[:, None]).sum(dim=0, dtype=torch.float64)
        window.entropy_sum[row] += (entropy * weight).sum(dtype=torch.float64)
        window.tokens[row] += weight.long().sum()

    def all_reduce(self) -> None:
        """Sum the window's raw counts over all processes (no-op unless torch.distributed is initialized)."""
        self.window = reduce_counts(self.window)

    def compute(self) -> dict[str, float]:
        return router_metrics(self.layers, self.window)

    def load_matrix(self) -> torch.Tensor:
        """[layers, experts] load fractions of the current window."""
        return load_fractions(self.window)


def reduce_counts(counts: RouterCounts) -> RouterCounts:
    """A copy of ``counts`` summed over all processes (counts, not fractions, so the result is exact)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return counts
    device = counts.assignments.device
    if "nccl" in str(dist.get_backend()) and device.type != "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    ints = torch.cat([counts.assignments.flatten(), counts.tokens]).to(device)
    floats = torch.cat([counts.prob_sum.flatten(), counts.entropy_sum]).to(device)
    dist.all_reduce(ints)
    dist.all_reduce(floats)
    n_layers, n_experts = counts.assignments.shape
    cells = n_layers * n_experts
    return RouterCounts(
        ints[:cells].view(n_layers, n_experts), floats[:cells].view(n_layers, n_experts), floats[cells:], ints[cells:]
    )


def plot_router_heatmap(load_matrix, path: str | os.PathLike, title: str, layers: list[int] | None = None) -> None:
    """Save a layers x experts heatmap of load fractions as a PNG (no pyplot, so no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = torch.as_tensor(load_matrix, dtype=torch.float64).numpy()
    n_layers, n_experts = matrix.shape
    layers = list(range(n_layers)) if layers is None else layers
    fig = Figure(figsize=(min(6 + 0.12 * n_experts, 24), min(3 + 0.3 * n_layers, 18)))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(matrix, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xlabel("expert")
    ax.set_ylabel("decoder layer")
    if n_layers <= 64:
        ax.set_yticks(range(n_layers), [str(layer) for layer in layers])
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=f"load fraction (balanced: 1/{n_experts})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


class RouterStatsCallback(TrainerCallback):
    """Logs ``router/...`` scalars each logging step and saves a load heatmap with each checkpoint (module docstring)."""

    def __init__(self, model: nn.Module, heatmap: bool = True):
        self.stats = RouterStats(model)
        self.heatmap = heatmap
        self.cumulative = RouterCounts.zeros(len(self.stats.layers), self.stats.n_experts)
        self.last_window: dict[str, float] = {}
        self.last_step = 0
        self._merged = False  # metrics() was called by the trainer's log() for the log now in progress
        if not self.stats.routers:
            logger.warning("router telemetry: no MoE routers found in %s; nothing to record", type(model).__name__)

    def set_token_mask(self, mask: torch.Tensor | None) -> None:
        self.stats.set_token_mask(mask)

    def metrics(self) -> dict[str, float]:
        """Reduce, compute and reset the window; the trainer merges the result into its training logs."""
        self._merged = True
        if not self.stats.routers:
            return {}
        self.stats.all_reduce()
        self.last_window = self.stats.compute()
        self.cumulative = self.cumulative + self.stats.window.to("cpu")
        self.stats.reset()
        return dict(self.last_window)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not self._merged:  # the trainer did not merge metrics() into this log: add them now if it is a training log
            if logs is None or "loss" not in logs:  # eval logs carry eval_loss instead
                return
            scalars = self.metrics()
            logs.update(scalars)
            if state.log_history and state.log_history[-1].get("step") == state.global_step:
                state.log_history[-1].update(scalars)
        self._merged = False
        self.last_step = state.global_step

    def summary(self) -> dict:
        """Cumulative statistics through the last logging step, for the model card (no collective)."""
        return summarize(self.stats.layers, self.cumulative, self.last_step)

    def on_save(self, args, state, control, **kwargs):
        if not self.stats.routers:
            return
        # Everything so far: logged windows plus the current one (reduced on a copy, so logging is undisturbed).
        totals = self.cumulative + reduce_counts(self.stats.window)
        if not state.is_world_process_zero:
            return
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        os.makedirs(folder, exist_ok=True)
        record = {
            "step": state.global_step,
            "last_window": self.last_window,
            "cumulative": summarize(self.stats.layers, totals, state.global_step),
        }
        with open(os.path.join(folder, "router_stats.json"), "w") as f:
            json.dump(record, f, indent=2)
        if self.heatmap and int(totals.tokens.sum()) > 0:
            title = f"MoE router load, steps 1-{state.global_step}"
            plot_router_heatmap(
                load_fractions(totals), os.path.join(folder, "router_load.png"), title, self.stats.layers
            )


def summarize(layers: list[int], counts: RouterCounts, step: int) -> dict:
    metrics = router_metrics(layers, counts)
    per_layer = {
        layer: {key: metrics.get(f"router/layer{layer}/{key}") for key in ("max_load", "cv", "entropy", "dead_experts")}
        for layer in layers
    }
    return {
        "through_step": step,
        "tokens": metrics.get("router/tokens", 0),
        "max_over_mean": metrics.get("router/max_over_mean"),
        "cv": metrics.get("router/cv"),
        "entropy": metrics.get("router/entropy"),
        "dead_experts": metrics.get("router/dead_experts"),
        "balance_loss": metrics.get("router/balance_loss"),
        "layers": per_layer,
        "load_matrix": load_fractions(counts).tolist(),
    }
