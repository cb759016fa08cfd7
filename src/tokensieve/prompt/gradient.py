"""Gradient x input salience (Shrikumar et al., arXiv 1605.01713; FrugalPrompt's attribution family).

Per window: the objective of `target.py` is differentiated with respect to the input embeddings, and a token's
salience is |<gradient, embedding>|. One forward and one backward per window.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from tokensieve.prompt import target
from tokensieve.prompt.units import Units


def token_scores(model, ids: Tensor, question_ids: Tensor | None, window: int,
                 on_window: Callable[[int], None] | None = None) -> Tensor:
    out = torch.empty(ids.shape[0])
    embed = model.get_input_embeddings()
    for start in range(0, ids.shape[0], window):
        chunk = ids[start:start + window]
        full, q_start = target.build(chunk, question_ids)
        full = full.to(model.device)
        with torch.enable_grad():
            emb = embed(full).detach().requires_grad_(True)
            logits = model(inputs_embeds=emb, logits_to_keep=target.tail(full, q_start)).logits
            answer = logits[:, -1].argmax(-1).detach()
            target.objective(logits, full, q_start, answer).sum().backward()
        sal = (emb.grad[0, :q_start] * emb[0, :q_start]).sum(-1).abs().detach().float().cpu()
        out[start:start + chunk.shape[0]] = target.normalise(sal)
        if on_window:
            on_window(chunk.shape[0])
    return out


def score(model, tokenizer, units: Units, question_ids: Tensor | None, keep_share: float, window: int,
          on_window: Callable[[int], None] | None = None) -> Tensor:
    return units.pool(token_scores(model, units.ids, question_ids, window, on_window), "max")
