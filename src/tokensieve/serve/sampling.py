"""Choosing the next token (greedy at temperature 0, else temperature + top-p) and cutting text at stop strings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

GREEDY_BELOW = 1e-5  # a temperature this small is greedy (as in vLLM): dividing by it would overflow float32


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW

    def generator(self, device) -> torch.Generator | None:
        if self.greedy:
            return None
        generator = torch.Generator(device=device)
        generator.manual_seed(self.seed if self.seed is not None else torch.seed())
        return generator


def next_token(logits: Tensor, sampling: Sampling, generator: torch.Generator | None) -> int:
    """Greedy argmax at temperature (near) 0 (the same token `tokensieve generate` picks), else nucleus sampling."""
    if sampling.greedy:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / sampling.temperature, -1)
    if sampling.top_p < 1:
        sorted_probs, order = probs.sort(descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= sampling.top_p
        outside[0] = False  # the top token stays, even for a top_p below float32's resolution
        sorted_probs[outside] = 0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """(text before the first stop string, whether one occurred)."""
    hits = [text.find(s) for s in stops if s and s in text]
    return (text[: min(hits)], True) if hits else (text, False)


def safe_prefix(text: str, stops: list[str]) -> str:
    """The part of `text` that can be streamed now: hold back an unfinished character and any tail that could
    still grow into a stop string."""
    text = text[:-1] if text.endswith("\ufffd") else text
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                hold = max(hold, size)
                break
    return text[: len(text) - hold]
