"""Prefill once, branch per method: a dense prefix of a prompt that every branchable policy continues exactly."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tokensieve.core.cache import SieveCache
from tokensieve.core.hooks import apply
from tokensieve.core.memory import device_sync, now
from tokensieve.core.policy import Policy
from tokensieve.errors import TokensieveError
from tokensieve.methods import make
from tokensieve.models import cached_load, model_lock
from tokensieve.run.prompt import Batch, completion_prompt, forward_logits


@dataclass
class Prefix:
    """A dense prefill of a prompt's first `len(ids)` tokens, made once and branched by every method (`prefill`).

    A policy that scores with the last queries of the prompt (SnapKV's window, TOVA's last query) or with keys
    alone, and every dynamic selector, sees exactly what a one-pass prefill shows it when the prompt's last
    `tail` tokens are fed under the policy on a copy of this cache: eviction still happens at the end of the
    prompt forward, with those queries. `generate(..., prefix=...)` charges the prefix's seconds to every branch.
    """

    model: str
    ids: list[int]
    cache: SieveCache
    seconds: float
    max_new_tokens: int


def branchable(policy: Policy, tail: int) -> str | None:
    """None when `policy` gives the same result from a Prefix with `tail` tokens as from one prefill, else why
    not (the caller prefills per method for it)."""
    return policy.branch_refusal(tail)


def prefill(model: str, context: str, question: str, *, answer_prefix: str = "", tail: int = 64,
            max_new_tokens: int = 32, plain: bool = False, device: str = "cpu", weights: str = "fp32") -> Prefix:
    """Prefill densely all but the last `tail` tokens of the prompt `generate` would build."""
    net, tokenizer = cached_load(model, device, weights)
    context_text, question_text = completion_prompt(context, question, answer_prefix, plain)
    ids = tokenizer(context_text).input_ids + tokenizer(question_text, add_special_tokens=False).input_ids
    if tail < 1 or len(ids) <= tail:
        raise TokensieveError(f"a prefix needs a prompt longer than its tail ({len(ids)} tokens, tail {tail})")
    head = ids[:-tail]
    cache_ = SieveCache(net.config, reserve=len(ids) + max_new_tokens)
    with model_lock(net), torch.inference_mode(), apply(net, make("full")):
        start = now()
        forward_logits(net, torch.tensor([head], device=net.device), cache_, None,
                 torch.arange(len(head), device=net.device)[None])
        device_sync(net.device)
        seconds = now() - start
    return Prefix(model, head, cache_, seconds, max_new_tokens)


def check_prefix(prefix: Prefix, model: str, batch: Batch, policy: Policy, query_aware: bool, chunk: int | None,
                  max_new_tokens: int) -> None:
    if len(batch.lengths) != 1 or not query_aware or chunk is not None:
        raise TokensieveError("a prefix serves one query-aware sequence prefilled in one piece (no batch, no chunk)")
    if prefix.model != model or batch.ids[0, : len(prefix.ids)].tolist() != prefix.ids:
        raise TokensieveError("the prefix was prefilled from another model or prompt")
    if max_new_tokens > prefix.max_new_tokens:
        raise TokensieveError(f"the prefix reserved {prefix.max_new_tokens} new tokens, {max_new_tokens} asked")
    reason = branchable(policy, batch.ids.shape[1] - len(prefix.ids))
    if reason:
        raise TokensieveError(f"cannot branch from a prefix: {reason}")
