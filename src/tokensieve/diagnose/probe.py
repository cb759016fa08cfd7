"""One forward pass that records, per layer, what the diagnostics need — and nothing the model would not compute.

Attention: a diagnostic policy plugged into the tokensieve attention hook (core/hooks.py). It receives the
queries and keys exactly as the model rotated and normed them, accumulates the softmax attention mass every key
receives, block by block over the queries (memory O(block x tokens) per layer, never the full T x T map), and
then delegates to the model's own dense attention so the forward itself is unchanged. No switch to eager
attention is needed.

Hidden states: a forward hook on every decoder layer keeps only summaries of its output (per-token max |h| and
the largest entries), so long texts do not hold L x T x D activations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from tokensieve.core.hooks import apply, attention_modules
from tokensieve.core.policy import DynamicPolicy
from tokensieve.errors import TokensieveError


@dataclass
class LayerAttention:
    """Attention statistics of one layer, summed over the queries of the probed forward."""

    mass: Tensor  # [heads, tokens]: sum over queries of the attention each key receives
    visible: Tensor  # [tokens]: how many queries could see each key (causal, sliding window)
    entropy: Tensor  # [heads]: mean over queries of the attention entropy (nats)
    sliding_window: int | None


@dataclass
class LayerActivations:
    """Summary of one decoder layer's output hidden states [tokens, dim]."""

    token_max: Tensor  # [tokens]: max |h| over dimensions
    median: float  # median |h| over all entries
    top_values: Tensor  # [k]: the k largest |h|
    top_tokens: Tensor  # [k]
    top_dims: Tensor  # [k]


@dataclass
class Probe(DynamicPolicy):
    """A diagnostic 'policy': records attention mass from the model's own Q and K, then runs sdpa."""

    block: int = 256
    attention: dict[int, LayerAttention] = field(default_factory=dict)

    def attend(self, session, module, query: Tensor, key: Tensor, value: Tensor, attention_mask, **kwargs):
        if query.shape[0] != 1:
            raise TokensieveError("the diagnostics probe runs one sequence at a time (batch size 1)")
        scaling = kwargs.get("scaling") or module.scaling
        window = kwargs.get("sliding_window") or getattr(module, "sliding_window", None)
        self.attention[module.layer_idx] = attention_stats(
            query[0], key[0], scaling, window, kwargs.get("softcap"), self.block
        )
        return session.dense(module, query, key, value, attention_mask, **kwargs)


@torch.no_grad()
def attention_stats(query: Tensor, key: Tensor, scaling: float, window: int | None = None,
                    softcap: float | None = None, block: int = 256) -> LayerAttention:
    """query [heads, q, dim], key [kv_heads, s, dim] (the q queries are the last q of the s positions)."""
    heads, q_len, _ = query.shape
    kv_heads, s_len, _ = key.shape
    keys = key.float().repeat_interleave(heads // kv_heads, dim=0)
    key_pos = torch.arange(s_len, device=key.device)
    query_pos = key_pos[s_len - q_len:]
    mass = torch.zeros(heads, s_len, device=key.device)
    visible = torch.zeros(s_len, device=key.device)
    entropy = torch.zeros(heads, device=key.device)
    for lo in range(0, q_len, block):
        hi = min(q_len, lo + block)
        logits = torch.einsum("hqd,hsd->hqs", query[:, lo:hi].float(), keys) * scaling
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        qp = query_pos[lo:hi, None]
        hidden = key_pos[None, :] > qp
        if window:
            hidden |= key_pos[None, :] <= qp - window
        probs = torch.softmax(logits.masked_fill_(hidden, float("-inf")), dim=-1)
        mass += probs.sum(1)
        visible += (~hidden).sum(0)
        entropy += torch.special.entr(probs).sum(-1).sum(-1)
    return LayerAttention(mass.cpu(), visible.cpu(), (entropy / q_len).cpu(), window)


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder blocks whose outputs are the residual stream (Llama / Gemma / Qwen / Mistral layout)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
        raise TokensieveError(
            f"{type(model).__name__} has no model.layers decoder stack; diagnostics support Llama-family "
            "(SmolLM2, Llama, Qwen2, Mistral) and Gemma 2/3 causal LMs"
        )
    return layers


def _activation_hook(store: dict[int, LayerActivations], idx: int, top: int,
                     on_layer: Callable[[int], None] | None):
    def hook(_module, _args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        mag = hidden[0].detach().float().abs()  # [tokens, dim]
        values, flat = mag.flatten().topk(min(top, mag.numel()))
        store[idx] = LayerActivations(
            token_max=mag.amax(-1).cpu(), median=float(mag.median()), top_values=values.cpu(),
            top_tokens=(flat // mag.shape[1]).cpu(), top_dims=(flat % mag.shape[1]).cpu(),
        )
        if on_layer is not None:
            on_layer(idx)

    return hook


@dataclass
class ProbeResult:
    attention: list[LayerAttention]
    activations: list[LayerActivations]


@torch.no_grad()
def run_probe(model: torch.nn.Module, input_ids: Tensor, on_layer: Callable[[int], None] | None = None,
              block: int = 256, top: int = 64) -> ProbeResult:
    """One forward over `input_ids` [1, T] recording attention mass and activation summaries for every layer."""
    attention_modules(model)  # fails loudly on models that bypass the attention interface
    layers = decoder_layers(model)
    probe = Probe(block=block)
    acts: dict[int, LayerActivations] = {}
    handles = [layer.register_forward_hook(_activation_hook(acts, i, top, on_layer)) for i, layer in enumerate(layers)]
    try:
        with apply(model, probe):
            model(input_ids=input_ids.to(model.device), use_cache=False, logits_to_keep=1)
    finally:
        for handle in handles:
            handle.remove()
    missing = [i for i in range(len(layers)) if i not in probe.attention or i not in acts]
    if missing:
        raise TokensieveError(f"the probe saw no attention in layers {missing}; this architecture is not supported")
    return ProbeResult([probe.attention[i] for i in range(len(layers))], [acts[i] for i in range(len(layers))])
