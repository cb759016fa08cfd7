"""Session: everything that changes while a policy runs on a model. The policy object is configuration only.

A session binds to one SieveCache at a time (a new generation binds a new cache and starts fresh). It holds the
per-layer, per-sequence capacities, the queries buffered for eviction during decode, the dynamic selectors'
scratch state, and `usage`: what was really attended and how often attention fell back to dense.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor

from tokensieve.core.cache import SieveCache, SieveLayer
from tokensieve.core.policy import Policy
from tokensieve.core.rope import rotate
from tokensieve.core.tensors import storage_bytes, tensors_in
from tokensieve.core.view import LayerView
from tokensieve.errors import TokensieveError


@dataclass
class Usage:
    """Tokens attended per decode step, layer and sequence, and dense fallbacks (layer-forwards that read every
    key although the policy's budget was smaller), split into prompt forwards and decode steps."""

    attended_total: int = 0
    attended_count: int = 0
    attended_max: int = 0
    dense_prefill: int = 0
    dense_decode: int = 0

    def attended(self, counts: list[int]) -> None:
        self.attended_total += sum(counts)
        self.attended_count += len(counts)
        self.attended_max = max(self.attended_max, *counts)

    def dense(self, decode: bool) -> None:
        if decode:
            self.dense_decode += 1
        else:
            self.dense_prefill += 1

    @property
    def dense_fallbacks(self) -> int:
        return self.dense_prefill + self.dense_decode

    def attended_summary(self) -> dict:
        mean = self.attended_total / self.attended_count if self.attended_count else 0.0
        return {"mean": round(mean, 2), "max": self.attended_max}


@dataclass
class Session:
    """The state of one policy applied to one model."""

    policy: Policy
    dense: Callable  # the model's own attention implementation, for every forward the policy leaves dense
    prompt_tokens: int | list[int] | None = None  # budget base per sequence; None = tokens seen when first needed
    cache: SieveCache | None = None
    compress: bool = True  # False while feeding tokens that must not trigger eviction (a later question)
    code_when_attended: bool = False  # the prompt's last forward: each layer codes its cold rows once it attended
    capacity: dict[int, list[int]] = field(default_factory=dict)  # layer -> capacity per sequence
    evictions: int = 0
    scratch: dict = field(default_factory=dict)  # dynamic selectors' per-layer state, keyed (layer, name)
    usage: Usage = field(default_factory=Usage)
    recent: dict[int, list[Tensor]] = field(default_factory=dict)  # layer -> decode queries since last eviction
    prepared: dict = field(default_factory=dict)  # model-specific tables a policy built in prepare(); kept on bind
    rope: Tensor | None = None  # inverse frequencies when keys roll to their cache slot (positions="rolling")
    rolling_base: int = 0  # the position this forward's first token was rotated at (rolling positions)
    decode_room: int = 0  # tokens still to be decoded, when known: spare rows left after a prompt eviction
    observer: Callable | None = None  # stands in for after_attention during an `override` (a draft or tree forward)
    hooks: list = field(default_factory=list)  # module hooks a policy installed (`add_hook`); `close` removes them
    kv_dtype: str = "fp"  # the storage precision of a cache apply() makes (a caller's SieveCache keeps its own)
    kernels: bool = False  # opt-in compiled decode steps (`decode_kernel`), for the policies that have one

    @classmethod
    def open(cls, policy: Policy, model: torch.nn.Module, dense: Callable,
             prompt_tokens: int | list[int] | None = None) -> Session:
        """The one way a session starts (`apply()`, the server's sequences): `policy` on `model`, with the tables
        and hooks the policy prepares from the model. `close()` removes the hooks."""
        session = cls(policy=policy, dense=dense, prompt_tokens=prompt_tokens)
        try:
            policy.prepare(session, model)
        except BaseException:
            session.close()
            raise
        return session

    def bind(self, cache: SieveCache) -> None:
        self.cache, self.capacity, self.scratch, self.recent, self.usage = cache, {}, {}, {}, Usage()
        self.evictions = 0

    def layer(self, module: torch.nn.Module) -> SieveLayer | None:
        """The SieveLayer an attention module stores into (None: no cache bound yet, or a sliding-window layer)."""
        layer = None if self.cache is None else self.cache.layers[module.layer_idx]
        return layer if isinstance(layer, SieveLayer) else None

    def add_hook(self, handle) -> None:
        """Keep a hook handle a policy registered in `prepare`; `close` (and so leaving `apply()`) removes it."""
        self.hooks.append(handle)

    def state_bytes(self) -> int:
        """Bytes the policy's own state holds now (selectors' summaries and memos), counted once per storage."""
        return storage_bytes(tensors_in(self.scratch))

    def close(self) -> None:
        for handle in self.hooks:
            handle.remove()
        self.hooks.clear()

    @contextmanager
    def override(self, policy: Policy | None = None, compress: bool | None = None,
                 observer: Callable | None = None) -> Iterator[Session]:
        """For the block (one forward, say): another policy, compression on or off, and an `observer(module, query)`
        called instead of `after_attention`. Everything is restored after it."""
        saved = self.policy, self.compress, self.observer
        self.policy = policy if policy is not None else self.policy
        self.compress = compress if compress is not None else self.compress
        self.observer = observer if observer is not None else self.observer
        try:
            yield self
        finally:
            self.policy, self.compress, self.observer = saved

    def roll(self, args: tuple, kwargs: dict) -> None:
        """Rolling positions: this forward's tokens are rotated from the fewest tokens any layer stores, so RoPE
        angles never grow past the cache's size (a layer that stores more rotates them on, in `roll_layer`)."""
        if self.pads is not None:
            raise TokensieveError("positions=rolling does not support padded batches")
        inputs = kwargs.get("input_ids", args[0] if args else None)
        inputs = inputs if inputs is not None else kwargs["inputs_embeds"]
        self.rolling_base = min((layer.stored for layer in self.cache.sieve_layers.values()), default=0)
        positions = torch.arange(self.rolling_base, self.rolling_base + inputs.shape[1], device=inputs.device)
        kwargs["position_ids"] = positions.expand(inputs.shape[0], -1)

    def roll_layer(self, layer: SieveLayer, query: Tensor) -> Tensor:
        """Rotate this forward's query and new keys from the forward's base position to their own slots."""
        q_len = query.shape[-2]
        delta = layer.stored - q_len - self.rolling_base
        if delta == 0:
            return query
        layer.keys[:, :, -q_len:] = rotate(layer.keys[:, :, -q_len:], delta, self.rope)
        return rotate(query, delta, self.rope)

    @property
    def pads(self) -> Tensor | None:
        return None if self.cache is None else self.cache.pads

    def pad_counts(self, batch: int) -> list[int]:
        return [0] * batch if self.pads is None else list(self.cache.pad_counts)

    def real_lengths(self, seen: int, batch: int) -> list[int]:
        """Real (unpadded) tokens per sequence among `seen` cache positions."""
        return [seen - pad for pad in self.pad_counts(batch)]

    def capacities(self, layer_idx: int, seen: int, batch: int) -> list[int]:
        """The layer's capacity per sequence, fixed at the first compression point from the budget base."""
        if not self.capacity:
            layers = sorted(self.cache.sieve_layers)
            base = self.prompt_tokens or self.real_lengths(seen, batch)
            base = [base] * batch if isinstance(base, int) else list(base)
            per_seq = [self.policy.evictor().capacities(n, len(layers)) for n in base]
            self.capacity = {layer: [caps[rank] for caps in per_seq] for rank, layer in enumerate(layers)}
        return self.capacity[layer_idx]

    def after_attention(self, module: torch.nn.Module, query: Tensor) -> None:
        """Called after a layer attended: evict down to capacity at a compression point (a prompt forward, or a
        decode step that filled the layer to capacity + evict_every), and count what decode attended. In the
        prompt's last forward (`code_when_attended`), a quantized layer then codes its cold rows at once: nothing
        reads them at full precision again, so the codes equal those of `SieveCache.compact()` after the forward,
        and only the layer attending holds its prompt at full precision (the server's one-piece prefill)."""
        if self.observer is not None:
            self.observer(module, query)
            return
        if self.cache is None:
            return
        layer = self.cache.layers[module.layer_idx]
        if not isinstance(layer, SieveLayer):
            return  # sliding-window layers are bounded already
        self._evict_after(module, layer, query)
        if self.code_when_attended:
            layer.compact()

    def _evict_after(self, module: torch.nn.Module, layer: SieveLayer, query: Tensor) -> None:
        policy = self.policy.evictor()
        if policy is None:
            return
        batch, decode = query.shape[0], query.shape[-2] == 1
        if decode:
            self.usage.attended([layer.stored - pad for pad in (layer.pad_slots or [0] * batch)])
        if policy.budget.is_full:
            return
        caps = self.capacities(module.layer_idx, layer.seen, batch)
        every = policy.evict_every
        if not decode:
            if self.compress and (layer.stored > max(caps) or self._observes):
                view = self._view(module, layer, query)
                policy.accumulate(view)
                if layer.stored > max(caps):
                    self._evict(module, layer, view, caps, spare=max(every, self.decode_room))
        elif every:
            self.decoded(module, layer, query)

    def decoded(self, module, layer: SieveLayer, queries: Tensor) -> None:
        """Decode-time eviction: keep the last `evict_every` decode queries (`queries` [batch, heads, k, dim]: one
        step's, or a tree step's accepted tokens') and evict once the layer holds capacity + evict_every."""
        every = self.policy.evictor().evict_every
        recent = self.recent.setdefault(module.layer_idx, [])
        recent.extend(queries.split(1, dim=2))
        del recent[:-every]
        if layer.stored >= max(self.capacities(module.layer_idx, layer.seen, queries.shape[0])) + every:
            self.evict_now(module, layer, torch.cat(recent, 2), spare=every)
            recent.clear()

    def evict_now(self, module, layer: SieveLayer, queries: Tensor, spare: int) -> None:
        """Score `layer` with `queries` and keep its capacity, leaving `spare` rows: a decode-time eviction, also
        run by the tree verifier for the queries of the tokens it accepted."""
        caps = self.capacities(module.layer_idx, layer.seen, queries.shape[0])
        view = self._view(module, layer, queries)
        self.policy.evictor().accumulate(view)
        self._evict(module, layer, view, caps, spare=spare)

    @property
    def _observes(self) -> bool:
        return self.policy.evictor().accumulates()

    def _view(self, module, layer: SieveLayer, queries: Tensor) -> LayerView:
        ranks = sorted(self.capacity)
        keys, values = layer.rows()
        return LayerView(
            layer_idx=module.layer_idx, layer_rank=ranks.index(module.layer_idx), n_layers=len(ranks),
            queries=queries, keys=keys, values=values, positions=layer.positions,
            seen=layer.seen, scaling=module.scaling, state=layer.state, pads=self.pads,
        )

    def _evict(self, module, layer: SieveLayer, view: LayerView, caps: list[int], spare: int) -> None:
        pads = layer.pad_slots or [0] * len(caps)
        keeps = [min(cap, layer.stored - pad) for cap, pad in zip(caps, pads, strict=True)]  # early chunks: fewer
        indices = self.policy.evictor().select(view, keeps)
        width = indices.shape[-1]
        layer.keep(indices, spare=spare, pad_slots=[width - k for k in keeps] if self.pads is not None else None)
        if self.rope is not None:  # the key at old slot i moves to slot j: rotate it by j - i
            slots = torch.arange(width, device=indices.device)
            layer.keys.copy_(rotate(layer.keys, slots - indices, self.rope))
        self.evictions += 1
