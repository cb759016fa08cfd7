"""The policies' scores from one prompt's queries and keys as vLLM's attention layer sees them, and the choice of
which tokens fill the kept blocks. The same formulas as tokensieve's own KV policies (kv/snapkv.py,
kv/streaming_llm.py, kv/knorm.py) on vLLM's token-major tensors; tests/test_vllm_plugin.py checks that both pick
the same positions on the same prompt."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tokensieve.core.select import topk_keep
from tokensieve.vllm.plan import SINKS

OBSERVE, KERNEL = 32, 7  # SnapKV's defaults in tokensieve (kv/snapkv.py)


def observed_queries(policy: str) -> int:
    """How many of the prompt's last queries a policy scores with (0: none)."""
    return {"snapkv": OBSERVE, "tova": 1}.get(policy, 0)


def scores(policy: str, queries: Tensor, keys: Tensor, scale: float, positions: Tensor | None = None) -> Tensor:
    """[kv_heads, n] (higher = keep). queries: the last queries [w, q_heads, dim], the newest last; keys
    [n, kv_heads, dim] at ascending `positions` [n] (default 0..n-1), the newest key being the newest query's."""
    n, kv_heads, _ = keys.shape
    positions = torch.arange(n, device=keys.device) if positions is None else positions
    if policy == "streaming_llm":
        return positions.float().expand(kv_heads, n)
    if policy == "knorm":  # K-norm (arXiv 2406.11430): small key norms draw attention
        return -keys.float().norm(dim=-1).T
    mass = attention_mass(queries, keys, scale, positions)
    if policy == "tova":  # TOVA (arXiv 2401.06104): the newest query's attention, averaged over the group
        return mass.mean(1)
    # SnapKV (arXiv 2404.14469): summed over the group, max-pooled over KERNEL neighbours
    return F.max_pool1d(mass.sum(1)[:, None, :], KERNEL, stride=1, padding=KERNEL // 2)[:, 0, :]


def attention_mass(queries: Tensor, keys: Tensor, scale: float, positions: Tensor) -> Tensor:
    """[kv_heads, group, n]: the causal softmax attention of the last queries, summed over them."""
    w, q_heads, dim = queries.shape
    n, kv_heads, _ = keys.shape
    grouped = queries.float().reshape(w, kv_heads, q_heads // kv_heads, dim).permute(1, 2, 0, 3)
    logits = torch.einsum("hgqd,hsd->hgqs", grouped, keys.float().transpose(0, 1))
    query_pos = positions[-1] + 1 - w + torch.arange(w, device=keys.device)
    hidden = positions[None, :] > query_pos[:, None]
    return torch.softmax(logits.mul_(scale).masked_fill_(hidden, float("-inf")), dim=-1).sum(2)


def choose(token_scores: Tensor, candidates: int, keep: int) -> Tensor:
    """Indices [kv_heads, keep], ascending, among the first `candidates` scored tokens, that fill the kept blocks:
    the sinks (always the first tokens), then the best-scored (the tail after them stays in place)."""
    scored = token_scores[:, :candidates][None]
    sinks = torch.arange(candidates, device=token_scores.device) < SINKS
    return topk_keep(scored, keep, sinks.expand_as(scored))[0]
