"""What attribution explains: the model's answer to the question, given a window of context.

FrugalPrompt (Raiyan et al., 2025) keeps the tokens most salient for the model's output. Without a reference
answer the output is the model's own: the log-probability of its greedy next token after context + question,
plus the log-likelihood of the question itself (how much the context predicts what is asked; the relevance
signal of LongLLMLingua, arXiv 2310.06839). Without a question: the greedy next token after the window.
"""

from __future__ import annotations

import torch
from torch import Tensor


def build(window_ids: Tensor, question_ids: Tensor | None) -> tuple[Tensor, int]:
    """Input ids [1, window + question] and where the question starts."""
    q = question_ids if question_ids is not None else window_ids[:0]
    return torch.cat([window_ids, q])[None], window_ids.shape[0]


def tail(ids: Tensor, q_start: int) -> int:
    """Positions whose logits the objective needs (pass as `logits_to_keep`): the question's and the last."""
    return ids.shape[1] - q_start + 1


def objective(logits: Tensor, ids: Tensor, q_start: int, answer: Tensor) -> Tensor:
    """[batch] log p(answer | prompt) + sum log p(question tokens | context before them).

    `logits` [batch, tail(ids, q_start), vocab]: the last positions only."""
    logp = torch.log_softmax(logits.float(), -1)
    total = logp[:, -1].gather(1, answer.view(-1, 1).expand(logp.shape[0], 1))[:, 0]
    if ids.shape[1] > q_start:
        targets = ids[:, q_start:].expand(logp.shape[0], -1)
        total = total + logp[:, :-1].gather(2, targets[..., None])[..., 0].sum(-1)
    return total


def normalise(scores: Tensor) -> Tensor:
    """Per-window scores on a common scale (mean 1), so one global top-k can compare windows."""
    mean = scores.abs().mean()
    return scores / mean if mean > 0 else scores
