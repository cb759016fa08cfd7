"""Verify a draft tree in one forward (tree attention), accept greedily, and roll the cache back to the path.

The tree's tokens go through the model as one chunk with a 4-D mask (each node sees the cache and its own
ancestors) and position ids `seen + depth`. The model's own attention runs it when the session's policy is a KV
policy (the cache holds what the policy kept) or full; a dynamic selector attends each node separately over the
cache plus that node's ancestors, exactly as a one-token greedy step there would, with the selector's state
(reused selections, key pools) forked per node and the accepted path's state kept. Afterwards the cache keeps
the rows of the root and the accepted nodes only, moved in place into spare rows (no copy of the cache).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.cache import SieveCache, SieveLayer
from tokensieve.core.hooks import attention_modules
from tokensieve.core.policy import DynamicPolicy
from tokensieve.core.session import Session
from tokensieve.decode.tree import DraftTree
from tokensieve.errors import TokensieveError


def accept(tree: DraftTree, tokens: list[int], predicted: list[int]) -> tuple[list[int], list[int]]:
    """Greedy acceptance: from the root, follow the child whose token is the model's argmax at its parent.
    Returns the accepted nodes (root first) and the tokens they yield (each accepted child, then the argmax at the
    last accepted node: the token greedy decoding produces next)."""
    children = [dict() for _ in range(tree.size)]
    for i in range(tree.size - 1, 0, -1):  # the lowest node index wins among duplicate tokens
        children[tree.parents[i]][tokens[i]] = i
    nodes = [0]
    while (child := children[nodes[-1]].get(predicted[nodes[-1]])) is not None:
        nodes.append(child)
    return nodes, [tokens[i] for i in nodes[1:]] + [predicted[nodes[-1]]]


@dataclass
class TreeAttention(DynamicPolicy):
    """Wraps a dynamic selector for one tree forward: node i's query attends what the selector picks among the
    cached tokens plus the path root..i, one node at a time (nodes in breadth-first order, so a parent's selector
    state exists before its children's)."""

    name = "tree"
    inner: DynamicPolicy | None = None
    tree: DraftTree | None = None

    def __post_init__(self) -> None:
        self.paths = [torch.tensor(self.tree.ancestors(i)) for i in range(self.tree.size)]
        self.states: dict[int, list[dict]] = {}  # layer -> per node, its selector state after attending
        self.past: dict[int, int] = {}  # layer -> cached keys before this step

    def attend(self, session, module, query, key, value, attention_mask, **kwargs):
        size, layer_idx = self.tree.size, module.layer_idx
        past = key.shape[2] - size
        before = {k: v for k, v in session.scratch.items() if _layer_of(k) == layer_idx}
        self.past[layer_idx] = past
        states, outputs = [], []
        for i in range(size):
            parent = self.tree.parents[i]
            for name, value_ in (before if parent < 0 else states[parent]).items():
                session.scratch[name] = _fork(value_, past)
            rows = torch.cat([torch.arange(past, device=key.device), past + self.paths[i].to(key.device)])
            out = self.inner.attend(session, module, query[:, :, i:i + 1], key[:, :, rows], value[:, :, rows],
                                    None, **kwargs)
            outputs.append(out[0] if isinstance(out, tuple) else out)
            states.append({k: v for k, v in session.scratch.items() if _layer_of(k) == layer_idx})
        self.states[layer_idx] = states
        return torch.cat(outputs, 1), None

    def keep(self, session, node: int) -> None:
        """Leave the selector state of the accepted path's last node in the session; key summaries (`rewind`)
        go back to the cache before this step, and catch up from the rolled-back cache at the next step."""
        for layer_idx, states in self.states.items():
            session.scratch.update({k: _fork(v, self.past[layer_idx]) for k, v in states[node].items()})


def _fork(state, past: int):
    """A node's own copy of a selector's state. Key summaries that append in place into a shared buffer
    (`rewind`) restart from the `past` cached keys, so each node summarises its own path only."""
    out = copy.copy(state)
    if hasattr(out, "rewind"):
        out.rewind(past)
    return out


def _layer_of(key) -> int | None:
    return key[0] if isinstance(key, tuple) else None


class Verifier:
    """Tree verification and rollback on one model, cache and session (one sequence)."""

    def __init__(self, model, cache: SieveCache, session: Session) -> None:
        if len(cache.sieve_layers) != len(cache.layers):
            raise TokensieveError("tree decoding supports models whose layers all use full attention (sliding-window "
                                  "layers, as in Gemma 3, cannot roll back yet)")
        if cache.pads is not None:
            raise TokensieveError("tree decoding runs one sequence at a time")
        self.model, self.cache, self.session = model, cache, session
        self.modules = {m.layer_idx: m for m in attention_modules(model)}
        self.queries: dict[int, Tensor] = {}
        self.wrapper: TreeAttention | None = None
        self.tree: DraftTree | None = None

    @property
    def layers(self) -> dict[int, SieveLayer]:
        return self.cache.sieve_layers

    @property
    def seen(self) -> int:
        return next(iter(self.layers.values())).seen

    def room(self) -> int | None:
        """Tokens the cache may take before a KV policy's decode-time eviction is due (None: no limit), so that a
        tree step never crosses an eviction point a greedy step would stop at."""
        policy = self.session.policy.evictor()
        if policy is None or policy.budget.is_full or not policy.evict_every:
            return None
        return min(max(self.session.capacities(i, layer.seen, 1)) + policy.evict_every - layer.stored
                   for i, layer in self.layers.items())

    def forward(self, tree: DraftTree, tokens: Tensor) -> Tensor:
        """Logits [size, vocab] of every node of `tree` (tokens [size]); the cache gains `size` rows."""
        device = tokens.device
        stored = next(iter(self.layers.values())).stored
        depths = torch.tensor(tree.depths, device=device)
        mask = torch.ones(1, 1, tree.size, stored + tree.size, dtype=torch.bool, device=device)
        mask[0, 0, :, stored:] = tree.visibility(device)
        session, attender = self.session, self.session.policy.attender()
        dynamic = attender is not None and not attender.budget.is_full
        self.wrapper = TreeAttention(budget=attender.budget, inner=attender, tree=tree) if dynamic else None
        self.tree = tree
        # the tree forward runs the selector node by node, or else the evictor's cache densely (never a skipper)
        during = self.wrapper or session.policy.evictor()
        with session.override(policy=during, compress=False, observer=self._observe):
            out = self.model(input_ids=tokens[None], attention_mask=mask, position_ids=(self.seen + depths)[None],
                             cache=self.cache, use_cache=True, logits_to_keep=tree.size)
        return out.logits[0]

    def _observe(self, module, query: Tensor) -> None:
        """Stands in for `Session.after_attention` during a tree forward: keeps the queries for a decode-time
        eviction and counts what each node attended (a dynamic selector counts its own)."""
        self.queries[module.layer_idx] = query
        if self.wrapper is None:
            past = self.layers[module.layer_idx].stored - self.tree.size
            self.session.usage.attended([past + d + 1 for d in self.tree.depths])

    def rollback(self, nodes: list[int], size: int) -> None:
        """Keep the rows of `nodes` (root first, increasing) among the last `size` rows of every layer, then run a
        KV policy's decode-time eviction where a greedy step would have run it."""
        index = torch.tensor(nodes, device=next(iter(self.layers.values())).keys.device)
        for layer in self.layers.values():
            layer.rollback(size, index)
        if self.wrapper is not None:
            self.wrapper.keep(self.session, nodes[-1])
            self.wrapper = None
        self._decode_eviction(index)
        self.queries.clear()

    def rewind(self, tokens: int) -> None:
        """Forget the last `tokens` rows of every layer (a measurement's probe; no policy state is touched)."""
        for layer in self.layers.values():
            layer.truncate(layer.stored - tokens, layer.seen - tokens)

    def _decode_eviction(self, index: Tensor) -> None:
        """What `Session.after_attention` does after each decode step, for the accepted nodes' queries."""
        policy = self.session.policy.evictor()
        if policy is None or policy.budget.is_full or not policy.evict_every:
            return
        for i, layer in self.layers.items():
            self.session.decoded(self.modules[i], layer, self.queries[i][:, :, index])
