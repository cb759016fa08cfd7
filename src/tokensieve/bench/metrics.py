"""Quality metrics against the full cache: KL, top-1 agreement, perplexity ratio."""

from __future__ import annotations

import torch
from torch import Tensor


def fidelity(reference: Tensor, logits: Tensor, target: Tensor) -> dict[str, float]:
    """reference, logits: [tokens, vocab] predicting `target` [tokens]. KL(full || method), averaged."""
    logp, logq = torch.log_softmax(reference.float(), -1), torch.log_softmax(logits.float(), -1)
    kl = (logp.exp() * (logp - logq)).sum(-1)
    nll_ref = -logp.gather(1, target[:, None]).mean()
    nll = -logq.gather(1, target[:, None]).mean()
    return {
        "kl": float(kl.mean()),
        "top1": float((reference.argmax(-1) == logits.argmax(-1)).float().mean()),
        "ppl": float(nll.exp()),
        "ppl_full": float(nll_ref.exp()),
        "ppl_ratio": float((nll - nll_ref).exp()),
    }


def contains(answer: str, expected: str) -> float:
    return 1.0 if expected in answer else 0.0
