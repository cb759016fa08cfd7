"""Measured speed of dynamic selection against dense attention, same prompt, same process, interleaved runs.

decode: one dense prefill of a long real-prose prompt, then `steps` greedy decode steps per method from a copy
of that cache; median tokens/s over `repeats` and the ratio to full attention measured in the same run.
prefill: dense sdpa vs block-sparse prefill or prefill token skipping (fastv, spts, gemfilter) on the same prompt;
median seconds next to a FLOPs estimate, and the perplexity of the prompt's last `score_tokens` tokens
(teacher-forced; a token skipper keeps them to the top) under each, so speed comes with its quality cost.

Rows count the layer-forwards a method read densely although its budget was smaller (`dense_fallbacks`, of
the last run): a selector that falls back everywhere is timed as dense attention, not as its kernel.

Both add a `bound:no-attention` row: the same run with every attention output replaced by zeros (projections,
cache writes, MLPs and the LM head unchanged). No sparse kernel, however well compiled, can beat its speed-up.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass
from typing import ClassVar

import torch

from tokensieve.bench.flops import prefill_flops
from tokensieve.core.cache import SieveCache
from tokensieve.core.hooks import apply
from tokensieve.core.memory import now
from tokensieve.core.policy import DynamicPolicy, Policy
from tokensieve.core.session import Session
from tokensieve.data.corpus import haystack
from tokensieve.methods import REGISTRY, make
from tokensieve.models import cached_load
from tokensieve.sparse.tokenselect import TokenSelect

BOUND = "bound:no-attention"


@dataclass
class NoAttention(DynamicPolicy):
    """Not a method: attention costs nothing and returns zeros. Its speed is what the rest of the model costs,
    so `full / no-attention` bounds the speed-up of any attention kernel on this model and context. (A dynamic
    policy, so the hook calls its `attend` instead of the model's dense attention.)"""

    name: ClassVar[str] = BOUND

    def attend(self, session, module, query, key, value, attention_mask, **kwargs):
        batch, heads, length, _ = query.shape
        return query.new_zeros(batch, length, heads, value.shape[-1]), None


def _budget_of(name: str, budget: float) -> float | None:
    return 1.0 if name == "full" else None if name == BOUND else budget


def _prompt(model_name: str, tokens: int, device: str):
    model, tok = cached_load(model_name, device)
    ids = tok(haystack(tok, tokens), return_tensors="pt").input_ids.to(model.device)
    return model, ids


@torch.inference_mode()
def decode_speed(model_name: str, tokens: int, budget: float, methods: list[str], steps: int = 32,
                 repeats: int = 3, device: str = "cpu") -> list[dict]:
    model, ids = _prompt(model_name, tokens, device)
    base = SieveCache(model.config)
    with apply(model, make("full")):
        logits = model(ids, cache=base, logits_to_keep=1).logits[:, -1]
    names = ["full", *[m for m in methods if m != "full"], BOUND]
    rates: dict[str, list[float]] = {name: [] for name in names}
    policies = {name: make(name, budget if name != "full" else 1.0) for name in names[:-1]}
    policies[BOUND] = NoAttention()
    answers: dict[str, list[int]] = {}
    sessions: dict[str, Session] = {}
    for _ in range(repeats):
        for name in names:  # interleaved, so drift on a shared machine hits every method alike
            cache, token, out = copy.deepcopy(base), int(logits.argmax()), []
            with apply(model, policies[name]) as sessions[name]:
                start = now()
                for _ in range(steps):
                    out.append(token)
                    step = model(torch.tensor([[token]], device=model.device), cache=cache)
                    token = int(step.logits[0, -1].argmax())
                elapsed = now() - start
            rates[name].append(steps / elapsed)
            answers[name] = out
    full_rate = statistics.median(rates["full"])
    rows = []
    for name in names:
        rate = statistics.median(rates[name])
        agree = sum(a == b for a, b in zip(answers[name], answers["full"], strict=True)) / steps
        row = {"method": name, "budget": _budget_of(name, budget), "context_tokens": ids.shape[1],
               "decode_tok_s": round(rate, 2), "speedup": round(rate / full_rate, 3),
               "token_agreement": None if name == BOUND else round(agree, 3),
               "dense_fallbacks": sessions[name].usage.dense_fallbacks, "repeats": repeats, "steps": steps}
        if isinstance(policies[name], TokenSelect):  # its selection cache's hit rate over the last run
            row["selection_cache_hit_rate"] = round(policies[name].hit_rate(sessions[name]), 3)
        rows.append(row)
    return rows


def _prefill(model, ids, policy, score_tokens: int) -> tuple[float, float, int, int]:
    """(seconds, perplexity of the last `score_tokens`, dense fallbacks, tokens entering the last layer) of one
    prefill under `policy`."""
    cache = SieveCache(model.config)
    with apply(model, policy) as session:
        start = now()
        logits = model(ids, cache=cache, logits_to_keep=score_tokens + 1).logits
        elapsed = now() - start
    targets = ids[:, -score_tokens:]
    nll = torch.nn.functional.cross_entropy(logits[0, :-1].float(), targets[0])
    skip = session.scratch.get("skip")
    last = skip.carried[-1] if skip is not None and skip.carried else ids.shape[1]
    return elapsed, float(nll.exp()), session.usage.dense_fallbacks, last


def speed_policy(name: str, budget: float, block: int, score_tokens: int, options: dict | None = None) -> Policy:
    """A method as `speed prefill` runs it: dynamic selectors with sparse prefill; token skippers keep at least
    the scored tokens (their perplexity needs the last `score_tokens` + 1 carried to the top). `options`: the
    user's `--set` pairs, for every method compared."""
    cls = REGISTRY[name]
    if cls.skips_tokens:
        return make(name, budget, **{"last": score_tokens + 1, **(options or {})})
    return make(name, budget, **{"sparse_prefill": True, "prefill_block": block, **(options or {})})


@torch.inference_mode()
def prefill_speed(model_name: str, tokens: int, budget: float, methods: list[str], repeats: int = 3,
                  score_tokens: int = 512, device: str = "cpu", block: int = 128,
                  options: dict | None = None) -> list[dict]:
    """Rows per method: median seconds and speed-up over dense, the FLOPs estimate and its ratio next to them,
    perplexity of the last `score_tokens` and its rise, and the tokens that reached the last layer."""
    model, ids = _prompt(model_name, tokens, device)
    names = ["full", *[m for m in methods if m != "full"], BOUND]
    policies: dict[str, Policy] = {"full": make("full"), BOUND: NoAttention()}
    for name in names[1:-1]:
        policies[name] = speed_policy(name, budget, block, score_tokens, options)
    times: dict[str, list[float]] = {name: [] for name in names}
    ppl: dict[str, float] = {}
    fallbacks: dict[str, int] = {}
    last: dict[str, int] = {}
    for _ in range(repeats):
        for name in names:
            elapsed, ppl[name], fallbacks[name], last[name] = _prefill(model, ids, policies[name], score_tokens)
            times[name].append(elapsed)
    median = {name: statistics.median(values) for name, values in times.items()}
    n = ids.shape[1]
    dense_flops = prefill_flops(model.config, n)
    rows = []
    for name in names:
        measured = name != BOUND  # the attention-free run's perplexity means nothing
        skips = policies[name].skipper() is not None
        flops = prefill_flops(model.config, n, policies[name]) if name == "full" or skips else None
        rows.append({"method": name, "budget": _budget_of(name, budget), "prompt_tokens": n,
                     "prefill_s": round(median[name], 2), "speedup": round(median["full"] / median[name], 3),
                     "est_gflops": round(flops / 1e9, 1) if flops else None,
                     "est_speedup": round(dense_flops / flops, 3) if flops else None,
                     "last_layer_tokens": last[name],
                     "ppl_last_tokens": round(ppl[name], 3) if measured else None,
                     "ppl_rise_pct": round(100 * (ppl[name] / ppl["full"] - 1), 2) if measured else None,
                     "dense_fallbacks": fallbacks[name], "repeats": repeats})
    return rows
