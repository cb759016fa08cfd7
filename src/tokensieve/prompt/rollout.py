"""Attention rollout (Abnar & Zuidema, arXiv 2005.00928): how much the answer position draws on each token.

Per window (context + question), every layer's head-averaged attention, mixed with the residual
(0.5 A + 0.5 I, rows renormalised), is multiplied from the top layer down, starting from the rows of the
question tokens and the last position; the resulting row is each context token's salience. The weights are
recorded by a transformers attention function that runs sdpa for the output (so the model's numbers are
untouched) and recomputes softmax(QK^T) once per layer for the record.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from tokensieve.core.hooks import attention_implementation
from tokensieve.prompt import target
from tokensieve.prompt.units import Units

NAME = "tokensieve_rollout"
_RECORD: list[Tensor] = []


def _recording_attention(module, query, key, value, attention_mask, scaling=None, **kwargs):
    out = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    keys = repeat_kv(key, query.shape[1] // key.shape[1])
    weights = (query.float() @ keys.float().transpose(-1, -2)) * (scaling or query.shape[-1] ** -0.5)
    n_q, n_k = weights.shape[-2:]
    causal = torch.ones(n_q, n_k, dtype=torch.bool, device=weights.device).tril(n_k - n_q)
    weights = weights.masked_fill(~causal, float("-inf")).softmax(-1)
    _RECORD.append(weights.mean(1)[0])
    return out


AttentionInterface.register(NAME, _recording_attention)
AttentionMaskInterface.register(NAME, sdpa_mask)


@torch.inference_mode()
def token_scores(model, ids: Tensor, question_ids: Tensor | None, window: int,
                 on_window: Callable[[int], None] | None = None) -> Tensor:
    out = torch.empty(ids.shape[0])
    with attention_implementation(model, NAME):
        try:
            for start in range(0, ids.shape[0], window):
                chunk = ids[start:start + window]
                full, q_start = target.build(chunk, question_ids)
                _RECORD.clear()
                model(input_ids=full.to(model.device), use_cache=False, logits_to_keep=1)
                n = full.shape[1]
                eye = torch.eye(n, device=_RECORD[0].device)
                row = torch.zeros(n, device=eye.device)
                row[min(q_start, n - 1):] = 1.0
                row /= row.sum()
                for attn in reversed(_RECORD):
                    mixed = 0.5 * attn + 0.5 * eye
                    row = row @ (mixed / mixed.sum(-1, keepdim=True))
                out[start:start + chunk.shape[0]] = target.normalise(row[:q_start].float().cpu())
                if on_window:
                    on_window(chunk.shape[0])
        finally:
            _RECORD.clear()
    return out


def score(model, tokenizer, units: Units, question_ids: Tensor | None, keep_share: float, window: int,
          on_window: Callable[[int], None] | None = None) -> Tensor:
    return units.pool(token_scores(model, units.ids, question_ids, window, on_window), "max")
