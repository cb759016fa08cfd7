"""`compress(text, question=..., ratio=...)`: a shorter prompt with an exact token count, and what it cost.

The budget covers the whole prompt as the target model's tokenizer counts it: context tokens + question
tokens. The question is protected (sent verbatim, never scored away), so the context keeps
round(ratio * (context + question)) - question tokens, and the achieved ratio lands within 2% of the request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from tokensieve import models
from tokensieve.core.registry import Registry
from tokensieve.errors import TokensieveError
from tokensieve.prompt.fit import fit
from tokensieve.prompt.units import count, split

PRECISIONS = ("bfloat16", "float32")


@dataclass
class Compressed:
    """The JSON contract of `tokensieve compress --json`."""

    compressed: str
    question: str
    method: str
    model: str
    tokens_in: int  # context + question, target tokenizer
    tokens_out: int  # compressed context + question, re-tokenised
    target_tokens: int
    ratio_requested: float
    ratio_achieved: float
    seconds: float  # scoring + selection (the model is loaded before the clock starts)
    precision: str = "bfloat16"

    def to_dict(self) -> dict:
        return asdict(self)


def _surprisal():
    from tokensieve.prompt import surprisal

    return lambda net, tok, units, q, share, window, tick: surprisal.score(net, units, share, window=window,
                                                                          on_window=tick)


def _rollout():
    from tokensieve.prompt import rollout

    return rollout.score


def _gradient():
    from tokensieve.prompt import gradient

    return gradient.score


def _perturbation(recursive: bool):
    def scorer():
        from tokensieve.prompt import perturbation

        return lambda net, tok, units, q, share, window, tick: perturbation.score(
            net, tok, units, q, share, window, tick, recursive=recursive)

    return scorer


# each entry builds its scorer on first use: the scorers' modules load only when chosen
COMPRESSORS: Registry[Callable[[], Callable]] = Registry("compression method", {
    "surprisal": _surprisal, "rollout": _rollout, "gradient": _gradient, "loo": _perturbation(False),
    "reagent": _perturbation(True)})
METHODS = tuple(COMPRESSORS)


def target_tokens(tokens_in: int, ratio: float | None, tokens: int | None) -> int:
    """Tokens the whole prompt may keep, from a ratio in (0, 1] or an absolute token count."""
    if tokens is not None:
        if tokens < 1:
            raise TokensieveError(f"token target {tokens} must be at least 1")
        return min(tokens, tokens_in)
    if ratio is None or math.isnan(ratio) or not 0 < ratio <= 1:
        raise TokensieveError(f"ratio {ratio} is outside (0, 1]")
    return max(1, round(ratio * tokens_in))


def compress(
    text: str,
    question: str = "",
    ratio: float | None = 0.5,
    method: str = "surprisal",
    *,
    tokens: int | None = None,
    model: str = models.DEFAULT_MODEL,
    window: int = 512,
    device: str = "cpu",
    precision: str = "bfloat16",
    on_progress: Callable[[int, int], None] | None = None,
) -> Compressed:
    """Drop the least useful context tokens so context + question fit `ratio` (or `tokens`) of the prompt.

    method: surprisal (LLMLingua-style), rollout / gradient (attention rollout, gradient x input), loo / reagent
    (leave-one-out and recursive random perturbation, ReAGent-style: faithful, slower).
    window: tokens scored per step; long inputs go window by window and `on_progress(done, total)` follows.
    precision: bfloat16 (autocast; ~2x faster on CPUs with native bf16) or float32 for the scorer's forward.
    The output is always made of the input's own characters; its token count is the target's (+-2%).
    """
    from tokensieve.models import cached_load

    if not isinstance(text, str) or not text.strip():
        raise TokensieveError("the text to compress is empty")
    if tokens is None and (ratio is None or math.isnan(ratio) or not 0 < ratio <= 1):
        raise TokensieveError(f"ratio {ratio} is outside (0, 1]")
    if window < 16:
        raise TokensieveError(f"window {window} is too small: use at least 16 tokens")
    if precision not in PRECISIONS:
        raise TokensieveError(f"unknown precision '{precision}': use {' or '.join(PRECISIONS)}")
    scorer = COMPRESSORS.require(method)()
    net, tokenizer = cached_load(model, device)
    start = time.perf_counter()
    units = split(tokenizer, text)
    n_ctx, n_q = units.ids.shape[0], count(tokenizer, question)
    total_in = n_ctx + n_q
    target = target_tokens(total_in, ratio, tokens)
    if n_q >= target:
        raise TokensieveError(f"the question ({n_q} tokens) does not fit the budget of {target} tokens: "
                              "raise the ratio or shorten the question")
    keep = target - n_q
    requested = target / total_in if tokens is not None else ratio
    if keep >= n_ctx:
        text_out, ctx_out = text, n_ctx
    else:
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if on_progress:
                on_progress(min(done, n_ctx), n_ctx)

        q_ids = tokenizer(question, add_special_tokens=False, return_tensors="pt").input_ids[0] if question else None
        with torch.autocast(net.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            scores = scorer(net, tokenizer, units, q_ids, keep / n_ctx, window, tick)
        result = fit(tokenizer, units, scores, keep)
        text_out, ctx_out = result.text, result.tokens
    seconds = time.perf_counter() - start
    return Compressed(
        compressed=text_out, question=question, method=method, model=model, tokens_in=total_in,
        tokens_out=ctx_out + n_q, target_tokens=target, ratio_requested=round(requested, 6),
        ratio_achieved=round((ctx_out + n_q) / total_in, 6), seconds=round(seconds, 4), precision=precision,
    )
