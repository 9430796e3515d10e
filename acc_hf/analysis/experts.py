"""Expert specialization: which experts the router picks, per domain (search / swe / sql) and per token role.

Forward hooks on every router (``find_routers``: Qwen3-MoE ``mlp.gate`` returns (logits, top-k weights, top-k
indices)) count, for each token of an analysed sample, its top-k experts, its router softmax probabilities and the
entropy of that softmax, into cells indexed by (the sample's domain, the token's role, layer). Counts stay raw, so
samples and runs add up exactly; everything else is derived from them:

* load: each (domain | role, layer)'s share of top-k assignments per expert (rows sum to 1);
* routing entropy: mean per-token entropy of the router softmax, in nats (uniform over E experts: ln E);
* mutual information I(expert; domain) and I(expert; role) per layer, in nats, from the joint table of top-k
  assignments (each token contributes k (expert, domain) events). ``*_normalized`` divides by the entropy of the
  domain (role) marginal: the fraction of the domain uncertainty an expert choice removes. Plug-in estimates are
  biased upwards by about (rows - 1)(E - 1) / (2 N) nats for N events, so compare checkpoints on the same samples;
* between two checkpoints: the Jensen-Shannon divergence (nats, at most ln 2) of each domain's per-layer load,
  and the change of MI and entropy per layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from acc_hf.analysis.roles import ROLES, TokenRoles
from acc_hf.moe import find_routers, router_output, unwrap_model


@dataclass
class ExpertCounts:
    domains: list[str]
    layers: list[int]
    n_experts: int
    assignments: np.ndarray = None  # [D, R, L, E] int64 top-k assignments
    prob_sum: np.ndarray = None  # [D, R, L, E] float64 sums of router softmax probabilities
    entropy_sum: np.ndarray = None  # [D, R, L] float64 sums of per-token routing entropies
    tokens: np.ndarray = None  # [D, R] int64 tokens
    n_samples: int = 0
    skipped: list[dict] = field(default_factory=list)

    def __post_init__(self):
        d, r, layers, e = len(self.domains), len(ROLES), len(self.layers), self.n_experts
        if self.assignments is None:
            self.assignments = np.zeros((d, r, layers, e), dtype=np.int64)
            self.prob_sum = np.zeros((d, r, layers, e))
            self.entropy_sum = np.zeros((d, r, layers))
            self.tokens = np.zeros((d, r), dtype=np.int64)


def _normalize(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros(counts.shape), where=total > 0)


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along ``axis`` (0 log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=axis)


def mutual_information(joint_counts: np.ndarray) -> float:
    """I(X; Y) in nats of a 2-D table of event counts (rows: X, columns: Y)."""
    joint = np.asarray(joint_counts, dtype=np.float64)
    total = joint.sum()
    if total == 0:
        return 0.0
    p = joint / total
    return float(entropy(p.sum(axis=1)) + entropy(p.sum(axis=0)) - entropy(p.reshape(-1)))


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in nats along the last axis of two distributions (0 ... ln 2)."""
    m = (np.asarray(p) + np.asarray(q)) / 2
    return entropy(m) - (entropy(p) + entropy(q)) / 2


def specialization(counts: ExpertCounts) -> dict:
    """Load distributions, routing entropy and mutual information per layer (JSON-ready)."""
    by_domain = counts.assignments.sum(axis=1)  # [D, L, E]
    by_role = counts.assignments.sum(axis=0)  # [R, L, E]
    domain_rows = [i for i, _ in enumerate(counts.domains) if counts.tokens[i].sum() > 0]
    role_rows = [i for i, _ in enumerate(ROLES) if counts.tokens[:, i].sum() > 0]
    mi_domain, mi_role, mi_domain_norm, mi_role_norm = [], [], [], []
    for layer in range(len(counts.layers)):
        joint_d = by_domain[domain_rows, layer]
        joint_r = by_role[role_rows, layer]
        mi_domain.append(mutual_information(joint_d))
        mi_role.append(mutual_information(joint_r))
        h_d, h_r = entropy(_normalize(joint_d.sum(axis=1))), entropy(_normalize(joint_r.sum(axis=1)))
        mi_domain_norm.append(float(mi_domain[-1] / h_d) if h_d > 0 else None)
        mi_role_norm.append(float(mi_role[-1] / h_r) if h_r > 0 else None)
    tokens_d = counts.tokens.sum(axis=1)  # [D]
    tokens_r = counts.tokens.sum(axis=0)  # [R]
    entropy_d = counts.entropy_sum.sum(axis=1) / np.maximum(tokens_d, 1)[:, None]  # [D, L]
    entropy_r = counts.entropy_sum.sum(axis=0) / np.maximum(tokens_r, 1)[:, None]  # [R, L]
    entropy_all = counts.entropy_sum.sum(axis=(0, 1)) / max(int(counts.tokens.sum()), 1)  # [L]
    load_all = _normalize(by_domain.sum(axis=0))
    return {
        "n_samples": counts.n_samples,
        "layers": counts.layers,
        "n_experts": counts.n_experts,
        "tokens": {
            "domain": {d: int(tokens_d[i]) for i, d in enumerate(counts.domains)},
            "role": {r: int(tokens_r[i]) for i, r in enumerate(ROLES)},
        },
        "mi_domain": mi_domain,
        "mi_role": mi_role,
        "mi_domain_normalized": mi_domain_norm,
        "mi_role_normalized": mi_role_norm,
        "routing_entropy": entropy_all.tolist(),
        "routing_entropy_domain": {counts.domains[i]: entropy_d[i].tolist() for i in domain_rows},
        "routing_entropy_role": {ROLES[i]: entropy_r[i].tolist() for i in role_rows},
        "load_entropy": entropy(load_all).tolist(),
        "load": load_all.tolist(),
        "load_domain": {counts.domains[i]: _normalize(by_domain[i]).tolist() for i in domain_rows},
        "load_role": {ROLES[i]: _normalize(by_role[i]).tolist() for i in role_rows},
        "skipped": counts.skipped,
    }


def compare(base: dict, other: dict) -> dict:
    """Change between two ``specialization`` summaries (other - base): JS divergence of loads, delta MI / entropy."""

    def delta(key):
        return [None if a is None or b is None else b - a for a, b in zip(base[key], other[key])]

    js_domain = {
        d: js_divergence(np.array(base["load_domain"][d]), np.array(other["load_domain"][d])).tolist()
        for d in base["load_domain"]
        if d in other["load_domain"]
    }
    return {
        "js_load": js_divergence(np.array(base["load"]), np.array(other["load"])).tolist(),
        "js_load_domain": js_domain,
        "delta_mi_domain": delta("mi_domain"),
        "delta_mi_role": delta("mi_role"),
        "delta_routing_entropy": delta("routing_entropy"),
    }


class ExpertProbe:
    """Forward hooks on every router that add the current sample's routing into ``counts``."""

    def __init__(self, model: nn.Module, domains: list[str]):
        self.routers = find_routers(model)
        if not self.routers:
            raise ValueError(f"{type(unwrap_model(model)).__name__} has no MoE routers to analyse")
        config = unwrap_model(model).config
        self.top_k = getattr(getattr(config, "text_config", None) or config, "num_experts_per_tok", None)
        n_experts = self.routers[0][1].weight.shape[0]  # router weight: [experts, hidden]
        self.counts = ExpertCounts(list(domains), [layer for layer, _ in self.routers], n_experts)
        self._sample: tuple[int, torch.Tensor] | None = None
        self._handles = [router.register_forward_hook(self._hook(row)) for row, (_, router) in enumerate(self.routers)]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, row: int):
        def hook(module: nn.Module, args, output) -> None:
            if self._sample is None:
                return
            with torch.no_grad():
                self._record(row, *router_output(output))

        return hook

    def _record(self, row: int, logits: torch.Tensor, indices: torch.Tensor | None) -> None:
        domain, roles = self._sample
        roles = roles.to(logits.device)  # layers may sit on other GPUs
        n_experts, n_roles = self.counts.n_experts, len(ROLES)
        logits = logits.detach().float().reshape(-1, logits.shape[-1])
        if logits.shape[0] != roles.shape[0]:
            raise ValueError(f"router saw {logits.shape[0]} tokens, the sample has {roles.shape[0]}")
        probs = logits.softmax(dim=-1)
        if indices is None:  # a plain nn.Linear gate: route as the MoE block does
            indices = torch.topk(probs, self.top_k, dim=-1).indices
        indices = indices.reshape(logits.shape[0], -1)
        cells = (roles[:, None] * n_experts + indices).reshape(-1)
        assigned = torch.bincount(cells, minlength=n_roles * n_experts).view(n_roles, n_experts)
        prob_sum = torch.zeros(n_roles, n_experts, dtype=torch.float64, device=probs.device)
        prob_sum.index_add_(0, roles, probs.double())
        entropies = torch.zeros(n_roles, dtype=torch.float64, device=probs.device)
        entropies.index_add_(0, roles, torch.special.entr(probs).sum(dim=-1).double())
        self.counts.assignments[domain, :, row] += assigned.cpu().numpy()
        self.counts.prob_sum[domain, :, row] += prob_sum.cpu().numpy()
        self.counts.entropy_sum[domain, :, row] += entropies.cpu().numpy()

    def run(self, model: nn.Module, sample: TokenRoles) -> None:
        if sample.domain not in self.counts.domains:
            raise ValueError(f"sample domain {sample.domain!r} is not one of {self.counts.domains}")
        domain = self.counts.domains.index(sample.domain)
        device = next(model.parameters()).device
        self._sample = (domain, torch.as_tensor(sample.roles, dtype=torch.long, device=device))
        try:
            with torch.no_grad():
                model(input_ids=torch.tensor([sample.input_ids], device=device), use_cache=False, logits_to_keep=1)
        finally:
            self._sample = None
        self.counts.tokens[domain] += np.bincount(sample.roles.astype(np.int64), minlength=len(ROLES))
        self.counts.n_samples += 1


def expert_counts(model: nn.Module, samples: Iterable[TokenRoles], domains: list[str], progress=None) -> ExpertCounts:
    """Run ``model`` (eval mode) on each sample and count its routing per (domain, role, layer)."""
    model.eval()
    probe = ExpertProbe(model, domains)
    try:
        for sample in samples:
            probe.run(model, sample)
            if progress is not None:
                progress.update(1)
    finally:
        probe.remove()
    return probe.counts
