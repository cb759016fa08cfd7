"""The prompt a run feeds: the completion-style framing, left-padded batches and the prompt forward (whole, or in
chunks with the policy acting after each)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tokensieve.core.cache import SieveCache
from tokensieve.errors import TokensieveError


def completion_prompt(context: str, question: str, answer_prefix: str = "", plain: bool = False) -> tuple[str, str]:
    """Completion-style prompt (chat templates cost SmolLM2 most needle hits): context, then the question.
    `plain`: the two texts verbatim, one after the other (code the model continues)."""
    if plain:
        return context, question
    return context, f"\n\nQuestion: {question}\nAnswer:" + (f" {answer_prefix}" if answer_prefix else "")


@dataclass
class Batch:
    """Left-padded prompts: ids [batch, n], mask (None without padding) and RoPE positions per sequence."""

    ids: torch.Tensor
    mask: torch.Tensor | None
    positions: torch.Tensor
    lengths: list[int]

    @classmethod
    def left_padded(cls, rows: list[list[int]], pad_id: int, device) -> Batch:
        width = max(len(r) for r in rows)
        ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], dtype=torch.long, device=device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long, device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return cls(ids, None if bool(mask.all()) else mask, positions, [len(r) for r in rows])

    def forward(self, model, cache_: SieveCache, start: int, end: int) -> torch.Tensor:
        mask = None if self.mask is None else self.mask[:, :end]
        return forward_logits(model, self.ids[:, start:end], cache_, mask, self.positions[:, start:end])

    def extend(self, tokens: torch.Tensor) -> None:
        """Append one decoded token per sequence (ids [batch, 1])."""
        self.ids = torch.cat([self.ids, tokens], 1)
        self.positions = torch.cat([self.positions, self.positions[:, -1:] + 1], 1)
        if self.mask is not None:
            self.mask = torch.cat([self.mask, torch.ones_like(tokens)], 1)


def forward_logits(model, ids, cache_: SieveCache, mask, positions) -> torch.Tensor:
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache_,
                use_cache=True, logits_to_keep=1)
    return out.logits[:, -1, :]


def feed_prompt(model, batch: Batch, cache_: SieveCache, start: int, end: int, chunk: int | None) -> torch.Tensor:
    step = chunk or end - start
    logits = None
    for lo in range(start, end, step):
        logits = batch.forward(model, cache_, lo, min(end, lo + step))
    return logits


def validate_lengths(prompt_len: int, context_len: int, max_new_tokens: int, limit: int | None) -> None:
    if context_len == 0:
        raise TokensieveError("the context is empty")
    if limit and prompt_len + max_new_tokens > limit:
        raise TokensieveError(
            f"prompt of {prompt_len} tokens + {max_new_tokens} new tokens exceeds the model's maximum of {limit}"
        )
