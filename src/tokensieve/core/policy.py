"""The policy base classes: what every KV policy and dynamic selector shares. The table of methods and `make`
live in `tokensieve.methods`, above the method files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from torch import Tensor

from tokensieve.core.budget import Allocation, Budget, allocate
from tokensieve.core.quest_calls import QuestCall
from tokensieve.core.rope import full_attention_inv_freq
from tokensieve.core.select import protected, topk_keep
from tokensieve.core.view import LayerView
from tokensieve.errors import TokensieveError


@dataclass
class Policy:
    """A method at one stage: subclasses say how tokens are scored; shared parts do the rest."""

    name: ClassVar[str] = "policy"
    kind: ClassVar[str] = "policy"  # what a user calls this family in an error message
    # options that name another policy, each with the base class it must have: `tokensieve.methods.make` turns
    # the name into that policy, built with the same budget (composition, e.g. auto's scorer)
    composes: ClassVar[dict[str, type[Policy]]] = {}
    # a token skipper: later layers see fewer prompt tokens, which a packed step of several sequences cannot do
    skips_tokens: ClassVar[bool] = False
    # in the bench's every-method sweeps (`tokensieve.catalog`); a variant or one needing a saved report opts out
    sweeps: ClassVar[bool] = True
    # the method classes a composed policy is built from (`Stacked`), so their sources version its stored cells
    stacks: ClassVar[tuple[type[Policy], ...]] = ()
    budget: Budget = field(default_factory=lambda: Budget(1.0))

    def evictor(self) -> KVPolicy | None:
        """The part that evicts the cache to the budget (a KV policy), or None: the hook and the session ask
        for it instead of testing the policy's class, so a composed policy is a KV policy by its part."""
        return None

    def attender(self) -> DynamicPolicy | None:
        """The part that attends each query to its own selection of the cache, or None (dense attention)."""
        return None

    def skipper(self) -> Policy | None:
        """The part that skips prompt tokens inside the forward (`prefill.skip.TokenSkip`), or None."""
        return None

    def evicts(self) -> bool:
        """True when the cache is evicted below the whole prompt (an evictor at a budget under full)."""
        evictor = self.evictor()
        return evictor is not None and not evictor.budget.is_full

    def decode_evict_every(self) -> int:
        """Decode tokens between evictions (0: the cache is not evicted during decode)."""
        return 0

    def prompt_window(self) -> int:
        """How many of the prompt's last queries the policy scores with (SnapKV's `observe`); 1 by default."""
        return 1

    def state_bytes(self, rows: int, kv_heads: int, head_dim: int, element: int,
                    kv_bits: int | None = None) -> int:
        """Bytes of its own state the policy keeps per layer for `rows` cached rows (a selector's summaries), on
        top of the cache: what a KV pool reserves besides the rows, over a store of `kv_bits` codes (None: full
        precision). 0 by default."""
        return 0

    def branch_refusal(self, tail: int) -> str | None:
        """None when a run that prefills all but the prompt's last `tail` tokens densely and feeds those under
        this policy gives what one prefill under it gives (`run.prefill` + branch), else why not."""
        return None

    def prepare(self, session, model) -> None:
        """Called by apply() before the first forward: a policy that needs model-specific tables builds them
        here, into `session.prepared` (never inside the forward pass). Nothing by default."""


@dataclass
class KVPolicy(Policy):
    """Scores cached tokens at each compression point and keeps the best `budget` per layer and KV head.

    Sinks and the recent window are always kept and charged to the budget; everything else competes on
    `score()`. Subclasses override `score(view) -> [batch, kv_heads, stored]` (higher = keep) and may set
    `allocation`. `evict_every` N > 0 also evicts during decode: whenever a layer holds capacity + N tokens it is
    brought back to capacity (kvpress's DecodingPress does the same), so a long generation stays bounded.
    `positions="rolling"` re-rotates kept keys to their position inside the cache (StreamingLLM's position
    shift, kvpress's KeyRerotationPress), so a stream past the trained context never sees unseen positions.
    """

    kind: ClassVar[str] = "KV policy"

    def evictor(self) -> KVPolicy:
        return self

    def prepare(self, session, model) -> None:
        if self.positions == "rolling":
            session.rope = full_attention_inv_freq(model, model.config.get_text_config().head_dim)

    allocation: Allocation = "uniform"
    evict_every: int = 0
    positions: str = "true"  # "rolling": keys re-rotated to their slot in the cache after every eviction

    def __post_init__(self) -> None:
        if self.evict_every < 0:
            raise TokensieveError(f"evict_every must be >= 0 (0 = off), got {self.evict_every}")
        if self.positions not in ("true", "rolling"):
            raise TokensieveError(f"positions must be 'true' or 'rolling', got {self.positions!r}")

    def accumulate(self, view: LayerView) -> None:
        """Called with every prompt forward's queries (and with the buffered decode queries before a decode
        eviction), evicting or not: a scorer that accumulates over all queries (H2O) does it here, and says
        so in `accumulates()`."""

    def accumulates(self) -> bool:
        """True when `accumulate` keeps state from every prompt query, so that it must see every forward."""
        return False

    def decode_evict_every(self) -> int:
        return self.evict_every

    def branch_refusal(self, tail: int) -> str | None:
        if self.accumulates():
            return f"{self.name} accumulates attention over every prompt query"
        if self.prompt_window() > tail:
            return f"{self.name} observes {self.prompt_window()} queries, more than the {tail}-token tail"
        if self.positions != "true":
            return "rolling positions re-rotate the prompt"
        return None

    def score(self, view: LayerView) -> Tensor:
        raise NotImplementedError

    def capacities(self, prompt_tokens: int, n_layers: int) -> list[int]:
        keep = self.budget.tokens(prompt_tokens)
        return allocate(keep, n_layers, self.allocation, floor=sum(self.budget.protect(keep)))

    def select(self, view: LayerView, capacity: int | list[int]) -> Tensor:
        """Indices [batch, kv_heads, max(capacity)] of the tokens that stay, sorted by position; `capacity` is
        one count or one per sequence (a shorter sequence fills its row with its own padding slots)."""
        caps = [capacity] * view.keys.shape[0] if isinstance(capacity, int) else list(capacity)
        guard = [self.budget.protect(c) for c in caps]
        keep = protected(view.positions, view.seen, [g[0] for g in guard], [g[1] for g in guard], view.pads)
        return topk_keep(self.score(view), caps, keep, view.valid)


@dataclass
class DynamicPolicy(Policy):
    """Nothing is evicted: the policy attends each query to its own selection of the cache (`attend`)."""

    kind: ClassVar[str] = "dynamic selector"
    # True: `attend` reads a deferred layer (`SieveLayer.deferred`) itself, the selected rows only (`gather`)
    reads_on_demand: ClassVar[bool] = False

    def attender(self) -> DynamicPolicy:
        return self

    def attend(self, session, module, query: Tensor, key: Tensor, value: Tensor, attention_mask, **kwargs):
        raise NotImplementedError

    def quest_call(self, session, module, query: Tensor) -> QuestCall | None:
        """This decode step as one compiled Quest call (`core.quest_calls`), charged as `attend` charges it, for a
        caller that runs many sequences' calls at once (the server's packed step); None where `attend` must run."""
        return None


@dataclass
class Stacked(Policy):
    """Two methods at two stages, composed: `skip` drops prompt tokens inside the forward, then `then` evicts the
    cache or selects per query. A subclass keeps one flat set of options (what `--set` names) and builds both
    parts from them in `parts()`; each part runs as it runs alone, asked for by `skipper()`, `evictor()` and
    `attender()`."""

    kind: ClassVar[str] = "combination"
    skips_tokens: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.skip, self.then = self.parts()

    def parts(self) -> tuple[Policy, Policy]:
        raise NotImplementedError

    def skipper(self) -> Policy:
        return self.skip

    def evictor(self) -> KVPolicy | None:
        return self.then.evictor()

    def attender(self) -> DynamicPolicy | None:
        return self.then.attender()

    def decode_evict_every(self) -> int:
        return self.then.decode_evict_every()

    def prompt_window(self) -> int:
        return self.then.prompt_window()

    def state_bytes(self, rows: int, kv_heads: int, head_dim: int, element: int,
                    kv_bits: int | None = None) -> int:
        return self.then.state_bytes(rows, kv_heads, head_dim, element, kv_bits)

    def branch_refusal(self, tail: int) -> str | None:
        return self.skip.branch_refusal(tail) or self.then.branch_refusal(tail)

    def prepare(self, session, model) -> None:
        self.skip.prepare(session, model)
        self.then.prepare(session, model)
