"""Surprisal scoring, LLMLingua-style (Jiang et al., arXiv 2310.05736).

A small causal LM reads the context once and each token's information is its self-information
-log p(x_i | x_<i): predictable tokens carry little and go first. Two levels, as in LLMLingua: a coarse
(sentence) level drops whole sentences with the lowest mean surprisal, then the fine (token) level ranks the
tokens of the sentences that stay. Unlike LLMLingua's iterative segment-by-segment recomputation, the context
is read in one causal pass, `window` tokens at a time on a growing KV cache (so every token is conditioned on
everything before it and a progress bar can follow long inputs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from transformers import DynamicCache

from tokensieve.prompt.units import Units

DROPPED = -1e6  # sentences the coarse level removed: taken back only if the fine level runs out


@torch.inference_mode()
def token_surprisal(model, ids: Tensor, window: int = 512, on_window: Callable[[int], None] | None = None) -> Tensor:
    """-log p(x_i | x_<i) for every token of `ids` [tokens]; a token nothing predicts gets the maximum.

    Past the model's trained length the cache restarts (each stretch is scored on its own)."""
    limit = getattr(model.config.get_text_config(), "max_position_embeddings", None) or 1 << 30
    cache = DynamicCache(config=model.config)
    out = torch.full((ids.shape[0],), float("nan"))
    prev_logits, seen = None, 0
    for start in range(0, ids.shape[0], window):
        chunk = ids[start:start + window][None].to(model.device)
        if seen + chunk.shape[1] > limit:
            cache, prev_logits, seen = DynamicCache(config=model.config), None, 0
        seen += chunk.shape[1]
        logits = model(input_ids=chunk, cache=cache, use_cache=True).logits[0].float()
        logp = torch.log_softmax(logits, -1)
        preds = torch.cat([prev_logits[None], logp[:-1]]) if prev_logits is not None else logp[:-1]
        targets = chunk[0] if prev_logits is not None else chunk[0, 1:]
        first = start if prev_logits is not None else start + 1
        out[first:start + chunk.shape[1]] = -preds.gather(1, targets[:, None])[:, 0].cpu()
        prev_logits = logp[-1]
        if on_window:
            on_window(chunk.shape[1])
    unpredicted = torch.isnan(out)
    out[unpredicted] = out[~unpredicted].max() if (~unpredicted).any() else 0.0
    return out


def score(model, units: Units, keep_share: float, coarse: float = 0.8, window: int = 512,
          on_window: Callable[[int], None] | None = None) -> Tensor:
    """Unit scores (higher = keep). `keep_share` of the tokens will stay; the coarse level keeps sentences up
    to keep_share / coarse of them (coarse = 1 disables it), the fine level picks tokens inside those."""
    tokens = token_surprisal(model, units.ids, window, on_window)
    unit_scores = units.pool(tokens, "max")
    if coarse >= 1 or keep_share >= 1:
        return unit_scores
    return _coarse(units, tokens, unit_scores, min(1.0, keep_share / coarse))


def _coarse(units: Units, tokens: Tensor, unit_scores: Tensor, share: float) -> Tensor:
    """Keep the sentences of highest mean surprisal up to `share` of the tokens; demote the rest."""
    n_sent = max(units.sentence) + 1
    sums, sizes = torch.zeros(n_sent), torch.zeros(n_sent)
    for u, (a, b) in enumerate(units.token_spans):
        sums[units.sentence[u]] += tokens[a:b].sum()
        sizes[units.sentence[u]] += b - a
    mean = sums / sizes.clamp(min=1)
    budget, kept = share * float(sizes.sum()), set()
    total = 0.0
    for s in torch.argsort(mean, descending=True).tolist():
        if total + float(sizes[s]) > budget and kept:
            continue
        kept.add(s)
        total += float(sizes[s])
    demote = torch.tensor([0.0 if units.sentence[u] in kept else DROPPED for u in range(len(units))])
    return unit_scores + demote
