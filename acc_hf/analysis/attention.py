"""Where attention goes: per layer and sampled head, how far back and onto which token roles, at any context length.

The full T x T attention matrix is never built. A forward pre-hook on each decoder layer's attention module takes
the hidden states and the rotary (cos, sin) the layer receives, and recomputes the queries and keys exactly as the
attention forward does (``q_proj`` -> ``q_norm`` -> RoPE with the modeling file's own ``apply_rotary_pos_emb``; the
same for keys, GQA head groups, the module's ``scaling`` and ``sliding_window``). The causal softmax is then computed
for chunks of query positions (``chunk`` rows x the keys up to the chunk's last query) in float64, and reduced
on the spot, so memory is chunk x T per sampled head, whatever attention kernel the model itself runs (sdpa, flash).

Accumulated per layer x sampled head, summed over query positions (every query counts once, pooled over samples):

* ``mean_distance``: sum_k p(q, k) * (q - k), averaged over queries;
* ``far_fraction[N]``: mass on keys at distance >= N;
* ``role_mass[role]``: mass on the keys of each token role (question / evidence / distractor / answer / other);
* ``distance_mass``: mass per log2 distance bin: bin 0 is distance 0 (the token itself), bin b >= 1 holds
  distances [2^(b-1), 2^b - 1]; bin masses come from a running sum over keys, so no distance matrix is built.

Query positions: ``answer`` (the positions that predict answer tokens, see ``roles``) or ``all``.
The forward keeps only the last position's logits (``logits_to_keep=1``): at 128k tokens full logits would not fit.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from acc_hf.analysis.roles import ROLES, TokenRoles
from acc_hf.moe import unwrap_model

MAX_BINS = 22  # distances up to 2^21 - 1 (2M tokens)
_LAYER_INDEX = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def distance_bin_edges(n_bins: int = MAX_BINS) -> list[tuple[int, int]]:
    """(lowest, highest) distance of each log2 bin: (0, 0), (1, 1), (2, 3), (4, 7), ..."""
    return [(0, 0)] + [(2 ** (b - 1), 2**b - 1) for b in range(1, n_bins)]


def find_attention_modules(model: nn.Module) -> list[tuple[int, nn.Module]]:
    """(decoder layer index, attention module) for every layer whose attention has q_proj / k_proj projections."""
    found = []
    for name, module in unwrap_model(model).named_modules():
        if name.split(".")[-1] == "self_attn" and hasattr(module, "q_proj") and hasattr(module, "k_proj"):
            match = _LAYER_INDEX.search(name + ".")
            found.append((int(match.group(1)) if match else len(found), module))
    return sorted(found, key=lambda pair: pair[0])


def sample_heads(n_heads: int, n_sample: int | None) -> list[int]:
    """Evenly spaced head indices (all heads when n_sample is None or >= n_heads)."""
    if not n_sample or n_sample >= n_heads:
        return list(range(n_heads))
    return sorted({int(round(x)) for x in np.linspace(0, n_heads - 1, n_sample)})


def rotated_queries_keys(attn: nn.Module, hidden_states: torch.Tensor, position_embeddings) -> tuple[torch.Tensor, ...]:
    """Queries [B, heads, T, d] and keys [B, kv_heads, T, d] after norms and RoPE, as the attention forward has them."""
    hidden_shape = (*hidden_states.shape[:-1], -1, attn.head_dim)
    query = attn.q_proj(hidden_states).view(hidden_shape)
    key = attn.k_proj(hidden_states).view(hidden_shape)
    if getattr(attn, "q_norm", None) is not None:
        query = attn.q_norm(query)
    if getattr(attn, "k_norm", None) is not None:
        key = attn.k_norm(key)
    query, key = query.transpose(1, 2), key.transpose(1, 2)
    cos, sin = position_embeddings
    apply_rotary = sys.modules[type(attn).__module__].apply_rotary_pos_emb
    return apply_rotary(query, key, cos, sin)


@dataclass
class AttentionStats:
    """Sums over query positions for layers x sampled heads (divide by ``n_queries`` for means)."""

    layers: list[int]
    heads: list[int]
    far: list[int]
    n_queries: int = 0
    n_samples: int = 0
    distance_sum: np.ndarray = None  # [L, H]
    far_mass: np.ndarray = None  # [L, H, F]
    role_mass: np.ndarray = None  # [L, H, R]
    bin_mass: np.ndarray = None  # [L, H, B]
    role_tokens: np.ndarray = None  # [R] tokens per role over the analysed samples
    max_distance: int = 0
    skipped: list[dict] = field(default_factory=list)

    def __post_init__(self):
        shape = (len(self.layers), len(self.heads))
        if self.distance_sum is None:
            self.distance_sum = np.zeros(shape)
            self.far_mass = np.zeros((*shape, len(self.far)))
            self.role_mass = np.zeros((*shape, len(ROLES)))
            self.bin_mass = np.zeros((*shape, MAX_BINS))
            self.role_tokens = np.zeros(len(ROLES), dtype=np.int64)

    def _mean(self, array: np.ndarray) -> np.ndarray:
        return array / max(self.n_queries, 1)

    def mean_distance(self) -> np.ndarray:
        return self._mean(self.distance_sum)

    def far_fraction(self) -> np.ndarray:
        return self._mean(self.far_mass)

    def role_fraction(self) -> np.ndarray:
        return self._mean(self.role_mass)

    def distance_mass(self) -> np.ndarray:
        return self._mean(self.bin_mass)

    def n_bins(self) -> int:
        """Bins up to the longest distance seen (the rest are empty by construction)."""
        return 1 if self.max_distance <= 0 else int(math.floor(math.log2(self.max_distance))) + 2

    def summary(self) -> dict:
        """JSON-ready: per layer x head matrices and the averages over all sampled (layer, head) pairs."""
        nb = self.n_bins()
        role = self.role_fraction()
        far = self.far_fraction()
        piece_mass = role[..., ROLES.index("evidence")] + role[..., ROLES.index("distractor")]
        tokens = dict(zip(ROLES, self.role_tokens.tolist()))
        piece_tokens = tokens["evidence"] + tokens["distractor"]
        evidence_share = np.divide(
            role[..., ROLES.index("evidence")], piece_mass, where=piece_mass > 0, out=np.full_like(piece_mass, np.nan)
        )
        return {
            "n_samples": self.n_samples,
            "n_queries": self.n_queries,
            "layers": self.layers,
            "heads": self.heads,
            "far": self.far,
            "role_tokens": tokens,
            "distance_bins": [list(edge) for edge in distance_bin_edges(nb)],
            "mean_distance": self.mean_distance().tolist(),
            "far_fraction": {str(n): far[..., i].tolist() for i, n in enumerate(self.far)},
            "role_mass": {name: role[..., i].tolist() for i, name in enumerate(ROLES)},
            "evidence_share": _nan_to_none(evidence_share),
            "distance_mass": self.distance_mass()[..., :nb].tolist(),
            "overall": {
                "mean_distance": float(self.mean_distance().mean()),
                "far_fraction": {str(n): float(far[..., i].mean()) for i, n in enumerate(self.far)},
                "role_mass": {name: float(role[..., i].mean()) for i, name in enumerate(ROLES)},
                # evidence / (evidence + distractor) of the attention mass, and the same share of the piece tokens
                "evidence_share": float(np.nanmean(evidence_share)) if np.isfinite(evidence_share).any() else None,
                "evidence_token_share": tokens["evidence"] / piece_tokens if piece_tokens else None,
                "distance_mass": self.distance_mass()[..., :nb].mean(axis=(0, 1)).tolist(),
            },
            "skipped": self.skipped,
        }


def _nan_to_none(array: np.ndarray) -> list:
    return [[None if math.isnan(x) else float(x) for x in row] for row in array.tolist()]


def _mass_up_to(cumulative: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """cumulative[q, index[q, j]] (the mass on keys 0..index), 0 where index < 0."""
    return cumulative.gather(1, index.clamp_min(0)).masked_fill_(index < 0, 0.0)


def head_chunk_stats(
    query: torch.Tensor,  # [T, d] one head's rotated queries
    key: torch.Tensor,  # [T, d] its KV head's rotated keys
    query_positions: torch.Tensor,  # [Q] sorted positions
    roles: torch.Tensor,  # [T] role ids
    *,
    scaling: float,
    far: list[int],
    sliding_window: int | None = None,
    chunk: int = 256,
    n_bins: int = MAX_BINS,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """(distance sum, far mass [F], role mass [R], bin mass [B]) summed over ``query_positions``, in query chunks."""
    device = query.device
    edges = torch.tensor(distance_bin_edges(n_bins), device=device)
    far_t = torch.tensor(far, device=device, dtype=torch.long)
    distance_sum = torch.zeros((), dtype=torch.float64, device=device)
    far_mass = torch.zeros(len(far), dtype=torch.float64, device=device)
    role_mass = torch.zeros(len(ROLES), dtype=torch.float64, device=device)
    bin_mass = torch.zeros(n_bins, dtype=torch.float64, device=device)
    for start in range(0, len(query_positions), chunk):
        positions = query_positions[start : start + chunk]
        n_keys = int(positions[-1]) + 1
        key_index = torch.arange(n_keys, device=device)
        scores = (query[positions].double() @ key[:n_keys].double().T) * scaling  # [c, n_keys]
        masked = key_index[None, :] > positions[:, None]
        if sliding_window:
            masked |= key_index[None, :] <= positions[:, None] - sliding_window
        probs = scores.masked_fill_(masked, float("-inf")).softmax(dim=-1)
        distance_sum += (positions.double() - probs @ key_index.double()).sum()
        role_mass.index_add_(0, roles[:n_keys].long(), probs.sum(dim=0))
        cumulative = probs.cumsum_(dim=-1)  # cumulative[q, i] = mass on keys 0..i
        far_mass += _mass_up_to(cumulative, positions[:, None] - far_t[None, :]).sum(dim=0)
        # distances [lo, hi] are keys [q - hi, q - lo]: mass = C(q - lo) - C(q - hi - 1)
        upper = _mass_up_to(cumulative, positions[:, None] - edges[None, :, 0])
        lower = _mass_up_to(cumulative, positions[:, None] - edges[None, :, 1] - 1)
        bin_mass += (upper - lower).sum(dim=0)
    return float(distance_sum), far_mass.cpu().numpy(), role_mass.cpu().numpy(), bin_mass.cpu().numpy()


class AttentionProbe:
    """Pre-hooks on every attention module that add the statistics of the current sample into ``stats``."""

    def __init__(self, model: nn.Module, *, heads: int | None = 4, far=(1024,), chunk: int = 256):
        self.modules = find_attention_modules(model)
        if not self.modules:
            raise ValueError(f"no attention modules with q_proj/k_proj found in {type(model).__name__}")
        config = unwrap_model(model).config
        config = getattr(config, "text_config", None) or config
        self.heads = sample_heads(config.num_attention_heads, heads)
        self.chunk = chunk
        self.stats = AttentionStats([layer for layer, _ in self.modules], self.heads, sorted(set(far)))
        self._sample: tuple[torch.Tensor, torch.Tensor] | None = None
        self._handles = [
            module.register_forward_pre_hook(self._hook(row), with_kwargs=True)
            for row, (_, module) in enumerate(self.modules)
        ]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, row: int):
        def hook(module: nn.Module, args, kwargs) -> None:
            if self._sample is None:
                return
            hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            rotary = kwargs["position_embeddings"] if "position_embeddings" in kwargs else args[1]
            if hidden.shape[0] != 1:
                raise ValueError("attention analysis runs one unpadded sequence at a time")
            query_positions, roles = (t.to(hidden.device) for t in self._sample)  # layers may sit on other GPUs
            with torch.no_grad():
                queries, keys = rotated_queries_keys(module, hidden, rotary)
                groups = queries.shape[1] // keys.shape[1]
                for col, head in enumerate(self.heads):
                    distance, far, role, bins = head_chunk_stats(
                        queries[0, head],
                        keys[0, head // groups],
                        query_positions,
                        roles,
                        scaling=module.scaling,
                        far=self.stats.far,
                        sliding_window=getattr(module, "sliding_window", None),
                        chunk=self.chunk,
                    )
                    self.stats.distance_sum[row, col] += distance
                    self.stats.far_mass[row, col] += far
                    self.stats.role_mass[row, col] += role
                    self.stats.bin_mass[row, col] += bins

        return hook

    def run(self, model: nn.Module, sample: TokenRoles, queries: str = "answer") -> int:
        """Forward one sample; returns the number of query positions analysed (0: nothing to analyse, skipped)."""
        if queries == "answer":
            positions = sample.answer_query_positions()
        elif queries == "all":
            positions = np.arange(len(sample))
        else:
            raise ValueError(f"queries must be 'answer' or 'all', not {queries!r}")
        if len(positions) == 0:
            return 0
        device = next(model.parameters()).device
        self._sample = (
            torch.as_tensor(positions, dtype=torch.long, device=device),
            torch.as_tensor(sample.roles, dtype=torch.long, device=device),
        )
        try:
            with torch.no_grad():
                model(input_ids=torch.tensor([sample.input_ids], device=device), use_cache=False, logits_to_keep=1)
        finally:
            self._sample = None
        self.stats.n_queries += len(positions)
        self.stats.n_samples += 1
        self.stats.max_distance = max(self.stats.max_distance, int(positions[-1]))
        self.stats.role_tokens += np.bincount(sample.roles.astype(np.int64), minlength=len(ROLES))
        return len(positions)


def attention_stats(
    model: nn.Module,
    samples: Iterable[TokenRoles],
    *,
    heads: int | None = 4,
    far=(1024,),
    queries: str = "answer",
    chunk: int = 256,
    progress=None,
) -> AttentionStats:
    """Run ``model`` (eval mode) on each sample and return the pooled attention statistics of the sampled heads."""
    model.eval()
    probe = AttentionProbe(model, heads=heads, far=far, chunk=chunk)
    try:
        for sample in samples:
            if probe.run(model, sample, queries) == 0:
                probe.stats.skipped.append({"id": sample.id, "reason": f"no {queries} query positions"})
            if progress is not None:
                progress.update(1)
    finally:
        probe.remove()
    return probe.stats
