"""Which blocks a request keeps and which it frees: one pure function, computed alike by the scheduler (which
frees) and the worker (which compacts and attends), plus the per-request options read from `vllm_xargs`."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from tokensieve.core.pages import PageSpan, span

VLLM_VERSION = "0.32.0"  # the only vLLM the plugin patches; any other refuses at start
SCHEDULER = "tokensieve.vllm.scheduler.SieveScheduler"  # what turns the plugin on (`--scheduler-cls`)
EVICTORS = ("snapkv", "tova", "streaming_llm", "knorm")  # the KV policies that score from the prompt's queries and keys
SELECTORS = ("quest_paged",)  # attend whole pages chosen per layer at each decode step, freeing nothing (`pages.py`)
POLICIES = EVICTORS + SELECTORS
SINKS = 4  # the first tokens, always kept (tokensieve's Budget default)
WINDOW = 32  # at least this many recent prompt tokens stay in place, in the untouched tail
POLICY_KEY, BUDGET_KEY, EVERY_KEY = "tokensieve_policy", "tokensieve_budget", "tokensieve_every"
DEFAULT_POLICY_ENV, DEFAULT_BUDGET_ENV, DEFAULT_EVERY_ENV = (
    "TOKENSIEVE_VLLM_POLICY", "TOKENSIEVE_VLLM_BUDGET", "TOKENSIEVE_VLLM_EVERY")


class BadOptions(ValueError):
    """A request's tokensieve options are invalid: vLLM answers that request with HTTP 400."""


@dataclass(frozen=True)
class Rule:
    """A request's policy, budget (a ratio of its prompt, in (0, 1]; 1.0 keeps everything; for a selector, a ratio
    of the tokens cached at each decode step) and `every`: evict again during decode each time that many tokens
    have been generated (0: only after prefill), as tokensieve's `evict_every`; rounded up to whole blocks, since
    blocks are what vLLM frees."""

    policy: str
    budget: float
    every: int = 0

    @property
    def evicts(self) -> bool:
        return self.budget < 1.0 and self.policy in EVICTORS

    @property
    def selects(self) -> bool:
        return self.budget < 1.0 and self.policy in SELECTORS


@dataclass(frozen=True)
class Hole:
    """A prompt of `prompt_tokens` keeps its best `keep_blocks * block_size` tokens (per layer and KV head) in its
    first `keep_blocks` blocks, frees blocks [keep_blocks, tail_block) and leaves the tail (the recent window and
    the partial last block) where it is. Positions never change, so RoPE stays right.

    With `every_blocks` E > 0 it evicts again each time E blocks' worth of tokens have been generated: the kept
    blocks are refilled from themselves and the E blocks after the hole, which then widens by E. The tail keeps
    its length, so the request holds the same kept count after every eviction, as tokensieve's capacity."""

    prompt_tokens: int
    block_size: int
    keep_blocks: int
    tail_block: int
    every_blocks: int = 0

    @property
    def tail_start(self) -> int:
        return self.tail_block * self.block_size

    @property
    def tail_tokens(self) -> int:
        return self.prompt_tokens - self.tail_start

    @property
    def kept_tokens(self) -> int:
        return self.keep_blocks * self.block_size + self.tail_tokens

    @property
    def freed_blocks(self) -> int:
        return self.tail_block - self.keep_blocks

    @property
    def hidden_tokens(self) -> int:
        """How far the attended length falls short of the true one."""
        return self.freed_blocks * self.block_size

    @property
    def every_tokens(self) -> int:
        return self.every_blocks * self.block_size

    def evictions(self, computed: int) -> int:
        """Decode-time evictions done once `computed` tokens are in the cache."""
        if not self.every_blocks or computed < self.prompt_tokens:
            return 0
        return (computed - self.prompt_tokens) // self.every_tokens

    def compacted(self, computed: int) -> bool:
        """Whether the prompt has been compacted once `computed` tokens are in the cache."""
        return computed >= self.prompt_tokens

    def tail_block_at(self, computed: int) -> int:
        """The first block after the hole once `computed` tokens are in the cache (the hole widens at each
        decode-time eviction)."""
        return self.tail_block + self.evictions(computed) * self.every_blocks

    def hidden_at(self, computed: int) -> int:
        """Tokens the hole hides once `computed` tokens are in the cache (0 before the prompt is compacted)."""
        if not self.compacted(computed):
            return 0
        return (self.tail_block_at(computed) - self.keep_blocks) * self.block_size

    def next_compaction(self, computed: int) -> int | None:
        """The token count at which the next compaction happens after `computed` (the prompt's end, then every
        `every_tokens`), or None when no more will."""
        if not self.compacted(computed):
            return self.prompt_tokens
        if not self.every_blocks:
            return None
        return self.prompt_tokens + (self.evictions(computed) + 1) * self.every_tokens


def plan(prompt_tokens: int, budget: float, block_size: int, window: int = WINDOW, every: int = 0) -> Hole | None:
    """The hole for a prompt at a budget, or None when not one whole block can be freed.

    The budget is ceil(budget x prompt) tokens, as in `tokensieve.Budget`; the kept count is rounded down to whole
    blocks, except that at least one block (the sinks' block) is always kept. `every` (tokens) is rounded up to
    whole blocks."""
    if budget >= 1.0:
        return None
    tail_block = (prompt_tokens - window) // block_size
    if tail_block < 2:
        return None
    tail_tokens = prompt_tokens - tail_block * block_size
    keep = math.ceil(budget * prompt_tokens)
    keep_blocks = max(1, (keep - tail_tokens) // block_size)
    if keep_blocks >= tail_block:
        return None
    return Hole(prompt_tokens, block_size, keep_blocks, tail_block, math.ceil(every / block_size))


def step_pages(tokens: int, budget: float, block_size: int) -> PageSpan | None:
    """The blocks a selector's decode step over `tokens` cached tokens attends at `budget` (a ratio of them, as in
    `tokensieve.Budget`), or None when the budget covers every block; the same as tokensieve's `quest_paged`."""
    return span(tokens, math.ceil(budget * tokens), block_size, WINDOW)


def active(scheduler_cls: object) -> bool:
    """Whether vLLM runs the plugin's scheduler (`SchedulerConfig.scheduler_cls`: None, a qualified name or a
    class): without it nothing frees blocks, so the rest of the plugin stays out of the way."""
    name = scheduler_cls if isinstance(scheduler_cls, str | None) else \
        f"{scheduler_cls.__module__}.{scheduler_cls.__qualname__}"
    return name == SCHEDULER


def server_default() -> Rule:
    """The server-wide rule, from the environment vLLM's processes inherit (no eviction when unset)."""
    try:
        return parse({}, Rule(os.environ.get(DEFAULT_POLICY_ENV, "snapkv"),
                              float(os.environ.get(DEFAULT_BUDGET_ENV, "1.0")),
                              int(os.environ.get(DEFAULT_EVERY_ENV, "0"))))
    except (BadOptions, ValueError) as err:
        raise SystemExit(f"tokensieve: bad {DEFAULT_POLICY_ENV}/{DEFAULT_BUDGET_ENV}/{DEFAULT_EVERY_ENV}: {err}") \
            from None


def parse(extra_args: dict | None, default: Rule) -> Rule:
    """A request's rule from `SamplingParams.extra_args` (`vllm_xargs`); BadOptions names what is wrong."""
    args = dict(extra_args or {})
    unknown = sorted(k for k in args if k.startswith("tokensieve_") and k not in (POLICY_KEY, BUDGET_KEY, EVERY_KEY))
    if unknown:
        raise BadOptions(f"unknown tokensieve option {unknown[0]!r}: use {POLICY_KEY}, {BUDGET_KEY} or {EVERY_KEY}")
    policy = args.get(POLICY_KEY, default.policy)
    if policy not in POLICIES:
        raise BadOptions(f"unknown {POLICY_KEY} {policy!r}: choose from {', '.join(POLICIES)}")
    budget = args.get(BUDGET_KEY, default.budget)
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 < budget <= 1:
        raise BadOptions(f"{BUDGET_KEY} {budget!r} must be a ratio of the prompt in (0, 1]")
    every = args.get(EVERY_KEY, default.every)
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise BadOptions(f"{EVERY_KEY} {every!r} must be a whole number of tokens >= 0 (0: evict after prefill only)")
    if every and policy in SELECTORS:
        raise BadOptions(f"{EVERY_KEY} applies to eviction; {policy} evicts nothing")
    return Rule(policy, float(budget), every)
