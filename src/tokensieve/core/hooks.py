"""The one hook: a transformers attention implementation that attends, then lets the active policy act.

Registered once through AttentionInterface (and its mask through AttentionMaskInterface) under the name
"tokensieve", so any model built on transformers' attention functions is supported without per-model patches.
`apply(model, policy)` switches a model to it, attaches a Session to every attention module and makes sure the
model runs on a SieveCache; leaving the context restores the model exactly. Dense attention is the model's own
previous implementation (sdpa, eager, ...). One session owns a model at a time.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from tokensieve.core.cache import SieveCache, SieveLayer
from tokensieve.core.decode_kernel import with_kernel
from tokensieve.core.int8_kernel import int8_products
from tokensieve.core.policy import Policy
from tokensieve.core.quant import check_kv_dtype
from tokensieve.core.quest_calls import QuestCall
from tokensieve.core.session import Session
from tokensieve.errors import TokensieveError

NAME = "tokensieve"
SESSION_ATTR = "_tokensieve_session"
_OWNERS_LOCK = threading.Lock()


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


def padded_mask(layer: SieveLayer, pads: Tensor, q_len: int, group: int) -> Tensor:
    """bool [batch, q_heads, q, stored] for a left-padded batch after eviction, read from the stored positions:
    a real query sees the real tokens at or before it; a padding query sees what precedes it (never nothing)."""
    positions = layer.positions[:, :, None, :]  # [batch, kv_heads, 1, stored]
    query_pos = torch.arange(layer.seen - q_len, layer.seen, device=positions.device)[None, None, :, None]
    causal = positions <= query_pos
    real_key = positions >= pads.view(-1, 1, 1, 1)
    real_query = query_pos >= pads.view(-1, 1, 1, 1)
    return (causal & (real_key | ~real_query)).repeat_interleave(group, dim=1)


def attending_session(module) -> Session:
    """The Session `module` attends under (set by `apply()` or the packed step)."""
    session: Session | None = getattr(module, SESSION_ATTR, None)
    if session is None:
        raise TokensieveError("the tokensieve attention ran outside tokensieve.apply()")
    return session


def sieve_attention(module, query, key, value, attention_mask, **kwargs):
    """The policy's attention for this layer (dense = the model's own implementation), then its eviction."""
    session = attending_session(module)
    layer = session.layer(module)
    attender = session.policy.attender()
    if layer is not None and layer.deferred and (attender is None or not attender.reads_on_demand):
        key, value = layer.rows()  # a quantized store left its codes unread: this attention reads every row
    if session.rope is not None and layer is not None:
        query = session.roll_layer(layer, query)
    if layer is not None and layer.evicted and session.pads is not None:
        attention_mask = padded_mask(layer, session.pads, query.shape[-2], module.num_key_value_groups)
    else:
        kv_len = layer.stored if layer is not None and layer.deferred else key.shape[-2]
        attention_mask = _fit_mask(attention_mask, kv_len)
    if attender is not None:
        output = attender.attend(session, module, query, key, value, attention_mask, **kwargs)
    else:
        output = session.dense(module, query, key, value, attention_mask, **kwargs)
    session.after_attention(module, query)
    return output


def sieve_quest_call(module, query: Tensor) -> QuestCall | None:
    """`sieve_attention`'s decode step as one compiled Quest call, planned and charged but not run, where the
    session's policy can give it as one (`DynamicPolicy.quest_call`); else None. Whoever runs the call then calls
    `session.after_attention(module, query)`, as `sieve_attention` does."""
    session = attending_session(module)
    attender = session.policy.attender()
    if attender is None or session.rope is not None:  # rolled positions re-rotate the query first
        return None
    return attender.quest_call(session, module, query)


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


def dense_attention(module: torch.nn.Module, implementation: str | None) -> Callable:
    """The attention function `implementation` names; eager is the model file's own `eager_attention_forward`,
    fed an additive float mask (tokensieve's masks are boolean, as sdpa's are)."""
    if implementation and implementation != "eager":
        return ALL_ATTENTION_FUNCTIONS[implementation]
    eager = sys.modules[type(module).__module__].eager_attention_forward

    def eager_forward(module, query, key, value, attention_mask, **kwargs):
        q_len, k_len = query.shape[-2], key.shape[-2]
        if attention_mask is None and q_len > 1:  # sdpa's mask is omitted when causality can be inferred
            attention_mask = torch.ones(q_len, k_len, dtype=torch.bool, device=query.device).tril(k_len - q_len)
        if attention_mask is not None and attention_mask.dtype == torch.bool:
            blocked = torch.finfo(query.dtype).min
            attention_mask = torch.zeros_like(attention_mask, dtype=query.dtype).masked_fill(~attention_mask, blocked)
        return eager(module, query, key, value, attention_mask, **kwargs)

    return eager_forward


def _ensure_sieve_cache(session: Session, model: torch.nn.Module):
    def pre_hook(_module, args, kwargs):
        # transformers >= 5.24 passes the cache as `cache` (`past_key_values` is deprecated): keep the caller's
        # name when it passed one, else use `cache`, so no deprecation warning is caused here
        name = "past_key_values" if kwargs.get("past_key_values") is not None else "cache"
        cache = kwargs.get(name)
        if isinstance(cache, SieveCache):
            if cache is not session.cache:
                session.bind(cache)
        elif cache is not None and cache.get_seq_length() > 0:
            raise TokensieveError("tokensieve.apply needs a fresh cache or a SieveCache, got a filled cache")
        elif kwargs.get("use_cache") is False:
            return args, kwargs
        else:
            cache = SieveCache(model.config, kv_dtype=session.kv_dtype)
            session.bind(cache)
            kwargs[name] = cache
        if cache.get_seq_length() == 0:
            cache.set_padding(kwargs.get("attention_mask"))
        if session.rope is not None:
            session.roll(args, kwargs)
        cache.defer_reads(True)  # this forward's attention is the hook: it reads quantized codes on demand
        return args, kwargs

    def post_hook(_module, _args, _kwargs, _output):
        if session.cache is not None:
            session.cache.defer_reads(False)  # whoever reads the cache next gets every row from update()

    return (model.register_forward_pre_hook(pre_hook, with_kwargs=True),
            model.register_forward_hook(post_hook, with_kwargs=True, always_call=True))


def attention_name(model: torch.nn.Module) -> str:
    """The attention implementation `model` runs now (transformers keeps it in the config)."""
    return model.config._attn_implementation


@contextmanager
def attention_implementation(model: torch.nn.Module, name: str) -> Iterator[str]:
    """Run the block with `model` attending through `name` (registered with AttentionInterface); the previous
    implementation is yielded, and restored after the block whatever happens."""
    previous = attention_name(model)
    model.set_attn_implementation(name)
    try:
        yield previous
    finally:
        model.set_attn_implementation(previous)


@contextmanager
def apply(model: torch.nn.Module, policy: Policy, prompt_tokens: int | list[int] | None = None,
          kv_dtype: str = "fp", decode_kernel: bool = False) -> Iterator[Session]:
    """Run `model` (forward or generate) under `policy` inside the block; the model is restored after it.
    `kv_dtype`: the storage precision of the cache apply() makes when the caller passes none ("fp", "int8",
    "int4"); a caller's own SieveCache keeps its own. `decode_kernel`: dense one-token decode steps on CPU run
    tokensieve's kernel (`core.decode_kernel`; equal to the model's own attention up to float rounding), and so do
    the policies' own compiled decode steps where they have one (Quest's, `core/quest_step.cpp`) and int8 weights'
    small products (`core.int8_kernel`).

    A model has one owner at a time: a nested or concurrent apply() on the same model is refused."""
    modules = attention_modules(model)
    check_kv_dtype(kv_dtype)
    dense = with_kernel(dense_attention(modules[0], attention_name(model)), decode_kernel, model.device)
    with _OWNERS_LOCK:
        if getattr(model, SESSION_ATTR, None) is not None:
            raise TokensieveError(
                "this model is already inside tokensieve.apply() (nested or in another thread); one policy per "
                "model at a time: leave the first block or load a second model")
        session = Session.open(policy, model, dense, prompt_tokens)
        session.kv_dtype, session.kernels = kv_dtype, decode_kernel
        setattr(model, SESSION_ATTR, session)
    try:
        with attention_implementation(model, NAME), int8_products(model, decode_kernel):
            for module in modules:
                setattr(module, SESSION_ATTR, session)
            handles = _ensure_sieve_cache(session, model)
            try:
                yield session
            finally:
                for handle in handles:
                    handle.remove()
                session.close()
                for module in modules:
                    delattr(module, SESSION_ATTR)
    finally:
        with _OWNERS_LOCK:
            delattr(model, SESSION_ATTR)
