"""Perturbation attribution: leave-one-out and ReAGent-style recursive random replacement.

Leave-one-out (Li et al., arXiv 1612.08220) at span level: replace one span of `span` tokens with a neutral
filler token and measure how much the objective of `target.py` drops; a bigger drop = a more important span.
ReAGent (Zhao & Shan, arXiv 2402.00794) instead replaces random subsets of spans over several rounds and
credits each masked span with the drop of its round (here the replacement is a fixed filler token, not a
masked-LM proposal). Replacement keeps every sequence the same length, so perturbations run batched.
Faithful (they measure the model's behaviour directly) but far slower than surprisal: one forward per span
(loo) or per round (reagent) per window.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from tokensieve.prompt import target
from tokensieve.prompt.units import Units

SPAN = 16
ROUNDS = 32
MASKED_SHARE = 0.3
BATCH = 8


def _filler(tokenizer) -> int:
    ids = tokenizer(" ", add_special_tokens=False).input_ids
    return ids[0] if ids else (tokenizer.pad_token_id or 0)


def _plans(n_spans: int, recursive: bool, generator: torch.Generator) -> Tensor:
    """[plans, spans] boolean: which spans each perturbed copy replaces."""
    if not recursive:
        return torch.eye(n_spans, dtype=torch.bool)
    masked = max(1, round(MASKED_SHARE * n_spans))
    plans = torch.zeros(ROUNDS, n_spans, dtype=torch.bool)
    for r in range(ROUNDS):
        plans[r, torch.randperm(n_spans, generator=generator)[:masked]] = True
    return plans


@torch.inference_mode()
def token_scores(model, tokenizer, ids: Tensor, question_ids: Tensor | None, window: int,
                 on_window: Callable[[int], None] | None = None, recursive: bool = False) -> Tensor:
    out = torch.empty(ids.shape[0])
    filler = _filler(tokenizer)
    generator = torch.Generator().manual_seed(0)
    for start in range(0, ids.shape[0], window):
        chunk = ids[start:start + window]
        full, q_start = target.build(chunk, question_ids)
        full = full.to(model.device)
        keep = target.tail(full, q_start)
        logits = model(input_ids=full, logits_to_keep=keep).logits
        answer = logits[:, -1].argmax(-1)
        base = target.objective(logits, full, q_start, answer)
        n_spans = -(-q_start // SPAN)
        plans = _plans(n_spans, recursive, generator)
        drops = torch.empty(plans.shape[0])
        for b in range(0, plans.shape[0], BATCH):
            batch_plans = plans[b:b + BATCH]
            token_mask = batch_plans.repeat_interleave(SPAN, 1)[:, :q_start]
            batch = full.expand(batch_plans.shape[0], -1).clone()
            batch[:, :q_start][token_mask.to(batch.device)] = filler
            perturbed = model(input_ids=batch, logits_to_keep=keep).logits
            drops[b:b + BATCH] = (base - target.objective(perturbed, batch, q_start, answer)).float().cpu()
        credit = (plans.float() * drops[:, None]).sum(0) / plans.float().sum(0).clamp(min=1)
        span_scores = credit.repeat_interleave(SPAN)[:q_start]
        out[start:start + chunk.shape[0]] = span_scores - span_scores.min()
        if on_window:
            on_window(chunk.shape[0])
    return out


def score(model, tokenizer, units: Units, question_ids: Tensor | None, keep_share: float, window: int,
          on_window: Callable[[int], None] | None = None, recursive: bool = False) -> Tensor:
    return units.pool(token_scores(model, tokenizer, units.ids, question_ids, window, on_window, recursive), "max")
