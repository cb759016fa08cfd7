"""Scorers of prefill token skipping, computed from a layer's *input* hidden states with the layer's own weights.

`attention_probe` recomputes what the layer's attention would show for the prompt's last `queries` tokens:
their softmax attention over every token of this forward, averaged over heads and queries. It costs the key
projection of every token plus `queries` x tokens scores, not a full attention (SPTS's partial attention
probing). `ffn_probe` predicts how much the layer's MLP would change each token through a rank-r proxy of its
weights (SPTS's low-rank transformation probing).
"""

from __future__ import annotations

import sys
import weakref

import torch
from torch import Tensor


def attention_probe(layer: torch.nn.Module, hidden: Tensor, position_embeddings, queries: int) -> Tensor:
    """[batch, n]: mean attention the last `queries` tokens give each of the n tokens of `hidden` at `layer`."""
    attn = layer.self_attn
    x = layer.input_layernorm(hidden)
    batch, n, _ = x.shape
    head_dim = attn.head_dim
    tail = x[:, -queries:]
    q = attn.q_proj(tail).view(batch, tail.shape[1], -1, head_dim).transpose(1, 2)
    k = attn.k_proj(x).view(batch, n, -1, head_dim).transpose(1, 2)
    if getattr(attn, "q_norm", None) is not None:  # Qwen3-style per-head norms
        q, k = attn.q_norm(q), attn.k_norm(k)
    cos, sin = position_embeddings
    rotary = sys.modules[type(attn).__module__].apply_rotary_pos_emb
    q, _ = rotary(q, q, cos[:, -queries:], sin[:, -queries:])
    _, k = rotary(k, k, cos, sin)
    k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
    logits = torch.matmul(q.float(), k.float().transpose(-1, -2)) * attn.scaling
    rows = torch.arange(n - q.shape[2], n, device=x.device)[:, None]
    logits = logits.masked_fill(torch.arange(n, device=x.device)[None, :] > rows, float("-inf"))
    return logits.softmax(-1).mean(dim=(1, 2))


_PROXIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _low_rank(linear: torch.nn.Linear, rank: int) -> tuple[Tensor, Tensor]:
    """(A [out, r], B [r, in]) with A @ B the best rank-r approximation of the weight."""
    u, s, vh = torch.linalg.svd(linear.weight.detach().float(), full_matrices=False)
    return (u[:, :rank] * s[:rank]).to(linear.weight.dtype), vh[:rank].to(linear.weight.dtype)


def ffn_probe(layer: torch.nn.Module, hidden: Tensor, rank: int) -> Tensor:
    """[batch, n]: norm of a rank-`rank` proxy of the layer's gated MLP applied to each token, relative to the
    token's norm. The factors are computed once per layer (an SVD of gate, up and down) and kept with it."""
    mlp = layer.mlp
    cached = _PROXIES.get(mlp)
    if cached is None or cached[0] != rank:
        cached = (rank, [_low_rank(m, rank) for m in (mlp.gate_proj, mlp.up_proj, mlp.down_proj)])
        _PROXIES[mlp] = cached
    (ag, bg), (au, bu), (ad, bd) = cached[1]
    x = layer.post_attention_layernorm(hidden)
    inner = mlp.act_fn((x @ bg.T) @ ag.T) * ((x @ bu.T) @ au.T)
    change = (inner @ bd.T) @ ad.T
    return change.float().norm(dim=-1) / hidden.float().norm(dim=-1).clamp(min=1e-6)
