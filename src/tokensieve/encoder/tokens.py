"""The tokens an encoder carries between layers, and the two reducers every method ends in: prune and merge.

A row stands for `size` original tokens (0 = padding). Rows stay left-aligned in their original order after every
reduction, so the first row (CLS, or a ViT's class token) stays first. Everything is per sequence: a batch keeps
its own widths through a validity mask, and nothing is ever matched or merged across sequences or with padding.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass
class Tokens:
    hidden: Tensor  # [batch, rows, dim]
    size: Tensor  # [batch, rows] float: original tokens each row stands for; 0 = padding
    protected: Tensor  # [batch, rows] bool: never removed (the pooled class token)
    word: Tensor | None = None  # [batch, rows] long: the word each row belongs to (subword merging)

    @classmethod
    def start(cls, hidden: Tensor, mask: Tensor | None, protect_first: bool, word: Tensor | None = None) -> Tokens:
        batch, rows, _ = hidden.shape
        valid = torch.ones(batch, rows, dtype=torch.bool, device=hidden.device) if mask is None else mask.bool()
        protected = torch.zeros_like(valid)
        if protect_first:
            protected[:, 0] = valid[:, 0]
        return cls(hidden, valid.to(hidden.dtype), protected, word)

    @property
    def valid(self) -> Tensor:
        return self.size > 0

    @property
    def counts(self) -> Tensor:
        """Real rows per sequence [batch]."""
        return self.valid.sum(1)

    def bias(self, proportional: bool) -> Tensor:
        """Additive attention bias [batch, 1, 1, rows]: padding hidden; with `proportional`, log(size) so a merged
        row gets the attention its tokens would have had together (ToMe's proportional attention)."""
        floor = torch.finfo(self.hidden.dtype).min
        if proportional:
            value = torch.where(self.valid, self.size.clamp(min=1e-9).log(), floor)
        else:
            value = torch.where(self.valid, 0.0, floor).to(self.hidden.dtype)
        return value[:, None, None, :]

    def keep(self, alive: Tensor) -> Tokens:
        """The rows where `alive` (and real), left-aligned in their order; the width shrinks to the longest."""
        alive = alive & self.valid
        width = max(int(alive.sum(1).max()), 1)
        order = torch.sort((~alive).to(torch.int8), dim=1, stable=True).indices[:, :width]
        real = torch.gather(alive, 1, order)

        def take(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            index = order if t.dim() == 2 else order.unsqueeze(-1).expand(-1, -1, t.shape[-1])
            return torch.gather(t, 1, index)

        hidden = take(self.hidden) * real.unsqueeze(-1).to(self.hidden.dtype)
        return Tokens(hidden, take(self.size) * real, take(self.protected) & real, take(self.word))

    def merge(self, src: Tensor, dst: Tensor) -> Tokens:
        """Fold each `src` row into row `dst` of its own sequence (size-weighted average, sizes added), then drop
        the sources. `dst` [batch, rows] is read where `src`; a destination must not itself be a source."""
        src = src & self.valid & ~self.protected
        dst = torch.where(src, dst, torch.arange(src.shape[1], device=src.device).expand_as(dst))
        weight = (self.size * src).unsqueeze(-1)
        total = self.hidden * self.size.unsqueeze(-1)
        total = total.scatter_add(1, dst.unsqueeze(-1).expand_as(total), self.hidden * weight)
        size = self.size.scatter_add(1, dst, self.size * src)
        hidden = total / size.clamp(min=1e-9).unsqueeze(-1)
        return replace(self, hidden=hidden, size=size).keep(~src)
