"""The one hook: a transformers attention implementation that runs sdpa and lets the active policy act.

Registered once through AttentionInterface (and its mask through AttentionMaskInterface) under the name
"tokensieve", so any model built on transformers' attention functions is supported without per-model patches.
`apply(model, policy)` switches a model to it, attaches a Session to every attention module and makes sure the
model runs on a SieveCache; leaving the context restores the model exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from tokensieve.core.cache import SieveCache, SieveLayer
from tokensieve.core.policy import KVPolicy, Policy
from tokensieve.core.view import LayerView
from tokensieve.errors import TokensieveError

NAME = "tokensieve"
SESSION_ATTR = "_tokensieve_session"


@dataclass
class Session:
    """The state of one policy applied to one model: the cache it acts on and its per-layer budgets."""

    policy: Policy
    cache: SieveCache | None = None
    prompt_tokens: int | None = None  # budget base; None = the tokens seen at the first compression point
    compress: bool = True  # False while feeding tokens that must not trigger eviction (a later question)
    capacity: dict[int, int] = field(default_factory=dict)
    evictions: int = 0
    scratch: dict = field(default_factory=dict)  # per-sequence state of dynamic policies, keyed by layer

    def bind(self, cache: SieveCache) -> None:
        self.cache, self.capacity, self.scratch = cache, {}, {}

    def _capacities(self, seen: int) -> dict[int, int]:
        if not self.capacity:
            layers = sorted(self.cache.sieve_layers)
            caps = self.policy.capacities(self.prompt_tokens or seen, len(layers))
            self.capacity = dict(zip(layers, caps, strict=True))
        return self.capacity

    def after_attention(self, module: torch.nn.Module, query: Tensor) -> None:
        """Called after a layer attended: evict down to the layer's capacity at a compression point."""
        policy = self.policy
        if not (isinstance(policy, KVPolicy) and self.compress and query.shape[-2] > 1 and self.cache):
            return
        if policy.budget.is_full:
            return
        layer = self.cache.layers[module.layer_idx]
        if not isinstance(layer, SieveLayer):
            return  # sliding-window layers are bounded already
        capacity = self._capacities(layer.seen)[module.layer_idx]
        if layer.stored <= capacity:
            return
        ranks = sorted(self.capacity)
        view = LayerView(
            layer_idx=module.layer_idx, layer_rank=ranks.index(module.layer_idx), n_layers=len(ranks),
            queries=query, keys=layer.keys, values=layer.values, positions=layer.positions,
            seen=layer.seen, scaling=module.scaling, state=layer.state,
        )
        layer.keep(policy.select(view, capacity))
        self.evictions += 1


def _fit_mask(mask: Tensor | None, kv_len: int) -> Tensor | None:
    """transformers builds one mask per layer type from the first layer's sizes; a layer that kept a different
    number of tokens (per-layer budgets) gets that mask right-aligned to its own key length: stored tokens stay
    visible to every query and the current chunk stays causal."""
    if mask is None or mask.shape[-1] == kv_len:
        return mask
    extra = mask.shape[-1] - kv_len
    if extra > 0:
        return mask[..., extra:]
    pad = mask.new_full((*mask.shape[:-1], -extra), True if mask.dtype == torch.bool else 0.0)
    return torch.cat([pad, mask], dim=-1)


def sieve_attention(module, query, key, value, attention_mask, **kwargs):
    """sdpa, then the policy's eviction for this layer. Identical to sdpa when no policy acts."""
    attention_mask = _fit_mask(attention_mask, key.shape[-2])
    session: Session | None = getattr(module, SESSION_ATTR, None)
    attend = getattr(session.policy, "attend", None) if session else None
    if attend is not None:
        output = attend(session, module, query, key, value, attention_mask, **kwargs)
    else:
        output = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if session is not None:
        session.after_attention(module, query)
    return output


AttentionInterface.register(NAME, sieve_attention)
AttentionMaskInterface.register(NAME, sdpa_mask)


def attention_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules that call the attention interface: they carry `layer_idx` and `scaling`."""
    found = [m for m in model.modules() if hasattr(m, "layer_idx") and hasattr(m, "scaling")
             and hasattr(m, "num_key_value_groups")]
    if not found or not getattr(model, "_supports_attention_backend", False):
        raise TokensieveError(
            f"{type(model).__name__} does not route attention through transformers' AttentionInterface; "
            "supported: Llama-family (SmolLM2, Llama, Qwen2, Mistral), Gemma 2/3 and other models that do"
        )
    return found


def _ensure_sieve_cache(session: Session, model: torch.nn.Module):
    def pre_hook(_module, args, kwargs):
        cache = kwargs.get("past_key_values")
        if isinstance(cache, SieveCache):
            if cache is not session.cache:
                session.bind(cache)
            return args, kwargs
        if cache is not None and cache.get_seq_length() > 0:
            raise TokensieveError("tokensieve.apply needs a fresh cache or a SieveCache, got a filled cache")
        if kwargs.get("use_cache") is False:
            return args, kwargs
        fresh = SieveCache(model.config)
        session.bind(fresh)
        kwargs["past_key_values"] = fresh
        return args, kwargs

    return model.register_forward_pre_hook(pre_hook, with_kwargs=True)


@contextmanager
def apply(model: torch.nn.Module, policy: Policy, prompt_tokens: int | None = None) -> Iterator[Session]:
    """Run `model` (forward or generate) under `policy` inside the block; the model is restored after it."""
    modules = attention_modules(model)
    previous = model.config._attn_implementation
    session = Session(policy=policy, prompt_tokens=prompt_tokens)
    model.set_attn_implementation(NAME)
    for module in modules:
        setattr(module, SESSION_ATTR, session)
    handle = _ensure_sieve_cache(session, model)
    try:
        yield session
    finally:
        handle.remove()
        for module in modules:
            delattr(module, SESSION_ATTR)
        model.set_attn_implementation(previous)
