"""The shared part of prefill token skipping: stages, selection, and the layer hooks that drop tokens.

stage: the prompt forward's decoder layers. scorer: a probe of one layer (`probe.py`). selector: sinks + the
prompt's last `probe` tokens + the best-scored rest, `keep` x the forward's tokens in all. reducer: the dropped
tokens' hidden states leave the forward: they keep the KV they wrote in the layers they passed through and have
none in later layers (each layer of the SieveCache stores its own count; decode attends to what a layer holds).

Hooks: a forward pre-hook on every decoder layer (installed once per model, inert unless the model runs under a
`TokenSkip` policy) shrinks the hidden states at a stage and slices the rotary embeddings, position ids and mask
of every later layer to the kept tokens, which keep their true positions. Only full-attention models and
unpadded prompts are supported (a sliding-window layer stores by count, not position; a padded batch would keep
a different number of tokens per row).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from tokensieve.core.cache import SieveLayer
from tokensieve.core.hooks import SESSION_ATTR, attention_modules
from tokensieve.core.policy import DynamicPolicy
from tokensieve.core.select import topk_keep
from tokensieve.errors import TokensieveError
from tokensieve.prefill.probe import attention_probe


@dataclass(frozen=True)
class Stage:
    """At decoder layer `layer`, only `keep` x the forward's tokens go on, chosen by a probe of layer `probe`."""

    probe: int
    layer: int
    keep: float


@dataclass
class SkipState:
    """One prompt forward: which of its tokens are still carried (`index`, None = all) and how many entered each
    layer (`carried`)."""

    tokens: int
    index: Tensor | None = None
    scores: Tensor | None = None
    carried: list[int] = field(default_factory=list)
    filtered: bool = False  # the forward's inputs are already the kept tokens (GemFilter): only the cache is fixed


def layer_index(depth: float, n_layers: int) -> int:
    """A depth given as a fraction of the stack (0 < depth < 1) or as a layer number (>= 1)."""
    index = round(depth * n_layers) if 0 < depth < 1 else int(depth)
    if not 1 <= index < n_layers:
        raise TokensieveError(f"a skipping stage at depth {depth} is outside layers 1..{n_layers - 1}")
    return index


def stage_keeps(budget: float, stages: int) -> list[float]:
    """Multi-stage delayed pruning: each stage keeps the same share of what reached it, so the last keeps
    `budget` of the prompt (three stages at 0.25: 0.63, 0.40, 0.25)."""
    return [budget ** ((i + 1) / stages) for i in range(stages)]


@dataclass
class TokenSkip(DynamicPolicy):
    """Base of the token-skipping policies: the budget is the share of the prompt carried past the last stage
    (sinks and the last `probe` prompt tokens included); attention is dense over what each layer holds.

    probe: the prompt's last tokens whose attention scores the others (the question); last: the prompt's last
    tokens always carried to the top (at least the probe's); kernel: scores are max-pooled over this many
    neighbours before the top-k (SnapKV's pooling), so a kept token brings its neighbours: a number or a UUID is
    many tokens, and keeping some of them is keeping none."""

    probe: int = 64
    last: int = 64
    kernel: int = 31  # measured: 7 lost 2k number and multikey needles that 31 keeps (docs/PREFILL.md)

    def __post_init__(self) -> None:
        if self.kernel < 1 or self.kernel % 2 == 0 or self.probe < 1 or self.last < 0:
            raise TokensieveError(f"{self.name}: kernel must be odd >= 1, probe >= 1 and last >= 0")

    skips_tokens = True

    def branch_refusal(self, tail: int) -> str | None:
        return f"{self.name} skips prompt tokens inside the forward, which a dense prefix would not"

    def skipper(self) -> TokenSkip:
        return self

    def stages(self, n_layers: int) -> list[Stage]:
        raise NotImplementedError

    def filter_prompt(self, session, model, args: tuple, kwargs: dict):
        """The model's forward pre-hook: new (args, kwargs) when the forward should run on fewer tokens than
        it was given (GemFilter's), else None."""
        return None

    def forward_state(self, session, carried: int) -> SkipState | None:
        """A prompt forward's starting state when it is not simply all its tokens (GemFilter's); None here."""
        return None

    def token_scores(self, layer: torch.nn.Module, hidden: Tensor, position_embeddings, stage: Stage) -> Tensor:
        """[batch, n] importance of this forward's carried tokens, from `layer`'s input."""
        return attention_probe(layer, hidden, position_embeddings, self.probe)

    def prepare(self, session, model) -> None:
        super().prepare(session, model)
        layers = decoder_layers(model)
        kinds = set(getattr(model.config.get_text_config(), "layer_types", None) or ["full_attention"])
        if kinds != {"full_attention"}:
            raise TokensieveError(f"{self.name} skips tokens on full-attention models only; this one has "
                                  f"{', '.join(sorted(kinds - {'full_attention'}))} layers")
        stages = self.stages(len(layers))
        session.prepared["skip_stages"] = {i: s for s in stages for i in (s.probe, s.layer)}
        for handle in install(model, layers):
            session.add_hook(handle)  # removed when the session closes (leaving apply())

    def attend(self, session, module, query, key, value, attention_mask, **kwargs):
        if query.shape[2] == 1:
            session.usage.attended([key.shape[2]] * query.shape[0])
        return session.dense(module, query, key, value, attention_mask, **kwargs)


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The decoder layers in order: the parents of the attention modules."""
    attns = {id(m) for m in attention_modules(model)}
    layers = [m for m in model.modules() if id(getattr(m, "self_attn", None)) in attns]
    return sorted(layers, key=lambda m: m.self_attn.layer_idx)


def install(model: torch.nn.Module, layers: list[torch.nn.Module]) -> list:
    """Register the layer pre-hooks of one session; each does nothing unless a TokenSkip session is active."""
    ref = weakref.ref(model)
    handles = [layer.register_forward_pre_hook(_layer_hook(ref, i), with_kwargs=True)
               for i, layer in enumerate(layers)]
    handles.append(model.register_forward_pre_hook(_model_hook(ref), with_kwargs=True))
    return handles


def active(model_ref) -> tuple[object, TokenSkip] | None:
    model = model_ref()
    session = getattr(model, SESSION_ATTR, None)
    skipper = None if session is None else session.policy.skipper()
    if not isinstance(skipper, TokenSkip):
        return None
    return session, skipper


def _model_hook(model_ref):
    def hook(_module, args, kwargs):
        found = active(model_ref)
        if found is None:
            return None
        return found[1].filter_prompt(found[0], model_ref(), args, kwargs)

    return hook


def _layer_hook(model_ref, index: int):
    def hook(layer, args, kwargs):
        found = active(model_ref)
        return None if found is None else before_layer(found[0], found[1], index, layer, args, kwargs)

    return hook


def before_layer(session, policy: TokenSkip, index: int, layer, args: tuple, kwargs: dict):
    """Score, drop, and slice this layer's inputs to the tokens still carried."""
    hidden = args[0] if args else kwargs["hidden_states"]
    if index == 0:
        filtered = policy.forward_state(session, hidden.shape[1]) if hidden.shape[1] > 1 else None
        session.scratch["skip"] = filtered or (SkipState(hidden.shape[1]) if hidden.shape[1] > 1 else None)
    state: SkipState | None = session.scratch.get("skip")
    if state is None:
        return None
    if session.pads is not None:
        raise TokensieveError(f"{policy.name} skips tokens of unpadded prompts only (one prompt, or equal lengths)")
    probing = session.scratch.get("skip_probe")
    stage = probing if probing is not None else session.prepared["skip_stages"].get(index)
    original = kwargs
    if state.index is not None and not state.filtered:
        kwargs = _sliced(session, index, original, state.index)
    if stage is not None and stage.probe == index:
        state.scores = policy.token_scores(layer, hidden, kwargs["position_embeddings"], stage)
        if probing is not None:
            raise ProbeDone(state.scores)
    if stage is not None and stage.layer == index:
        local = select(state, policy, stage, hidden.shape[1], first=_past(session, index) == 0)
        if local is not None:
            hidden = hidden.gather(1, local[..., None].expand(-1, -1, hidden.shape[-1]))
            state.index = local if state.index is None else state.index.gather(1, local)
            kwargs = _sliced(session, index, original, state.index)
            if args:
                args = (hidden, *args[1:])
            else:
                kwargs["hidden_states"] = hidden
    if state.index is not None:
        _record_true_positions(session, index, state)
    state.carried.append(hidden.shape[1])
    return args, kwargs


def _record_true_positions(session, index: int, state: SkipState) -> None:
    """Make this layer's next cache update store what really happened: the kept tokens at their true cache
    positions, `seen` advanced by every token of the forward (so an unmodified cache's size, the recent window
    and decode positions stay true), and, at a first update, rows reserved for the kept tokens and the decode
    room only (not for the whole prompt)."""
    cache = session.cache
    layer = cache.layers[index] if cache is not None else None
    if not isinstance(layer, SieveLayer):
        return
    layer.skip_next(state.index, state.tokens, reserve=state.index.shape[1] + session.decode_room)


class ProbeDone(Exception):  # noqa: N818  (control flow, not an error: a probe forward stops at its layer)
    def __init__(self, scores: Tensor) -> None:
        super().__init__("probe done")
        self.scores = scores


def select(state: SkipState, policy: TokenSkip, stage: Stage, carried: int, first: bool) -> Tensor | None:
    """Local indices [batch, k] of the carried tokens that go on (sorted), or None when all of them do."""
    keep = min(carried, max(math.ceil(stage.keep * state.tokens), 1))
    if keep >= carried or state.scores is None:
        return None
    scores = state.scores.float()
    kernel = policy.kernel
    if kernel > 1:
        scores = F.max_pool1d(scores[:, None], kernel, stride=1, padding=kernel // 2)[:, 0]
    n = scores.shape[-1]
    slots = torch.arange(n, device=scores.device)
    sinks = policy.budget.sinks if first and state.index is None else 0
    guard = (slots < sinks) | (slots >= n - min(max(policy.probe, policy.last), keep - min(sinks, keep)))
    return topk_keep(scores[:, None], keep, guard.expand_as(scores)[:, None])[:, 0]


def _past(session, index: int) -> int:
    cache = session.cache
    if cache is None:
        return 0
    layer = cache.layers[index]
    return getattr(layer, "stored", 0) if getattr(layer, "keys", None) is not None else 0


def _gather_seq(t: Tensor, index: Tensor) -> Tensor:
    """t [b or 1, n, ...] gathered along dim 1 with index [b, k]."""
    t = t.expand(index.shape[0], *t.shape[1:])
    return t.gather(1, index.view(*index.shape, *([1] * (t.dim() - 2))).expand(-1, -1, *t.shape[2:]))


def _sliced(session, layer: int, kwargs: dict, index: Tensor) -> dict:
    """This layer's kwargs for the carried tokens (`index` into the forward's tokens): rotary embeddings and
    position ids of their true positions, and a causal mask over them after all the layer stored before."""
    kwargs = dict(kwargs)
    cos, sin = kwargs["position_embeddings"]
    kwargs["position_embeddings"] = (_gather_seq(cos, index), _gather_seq(sin, index))
    if kwargs.get("position_ids") is not None:
        kwargs["position_ids"] = _gather_seq(kwargs["position_ids"], index)
    mask = kwargs.get("attention_mask")
    if isinstance(mask, Tensor):
        k, past = index.shape[1], _past(session, layer)
        causal = torch.ones(k, k, dtype=torch.bool, device=mask.device).tril()
        seen = torch.ones(k, past, dtype=torch.bool, device=mask.device)
        kwargs["attention_mask"] = torch.cat([seen, causal], -1)[None, None].expand(index.shape[0], 1, -1, -1)
    return kwargs
