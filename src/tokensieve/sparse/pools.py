"""Incrementally extended summaries of the cached keys that the selectors score against."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.tensors import append_rows


@dataclass
class BlockPool:
    """Per complete block of `size` tokens, pooled statistics of keys, and of values when given (mean by default;
    "min"/"max" per channel for Quest-style score bounds), extended incrementally as the cache grows."""

    size: int
    reduce: str = "mean"
    keys: Tensor | None = None  # [batch, kv_heads, blocks, dim]
    values: Tensor | None = None

    def _pool(self, x: Tensor, n_blocks: int) -> Tensor:
        blocks = x.unflatten(2, (n_blocks, self.size))
        return getattr(blocks, self.reduce)(3) if self.reduce == "mean" else getattr(blocks, "a" + self.reduce)(3)

    def update(self, keys: Tensor, values: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """The pooled keys and values (None when no values are pooled) of every complete block of `keys`."""
        done = 0 if self.keys is None else self.keys.shape[2]
        complete = keys.shape[2] // self.size
        if complete > done:
            lo, hi = done * self.size, complete * self.size
            new_k = self._pool(keys[:, :, lo:hi], complete - done)
            self.keys = new_k if self.keys is None else torch.cat([self.keys, new_k], 2)
            if values is not None:
                new_v = self._pool(values[:, :, lo:hi], complete - done)
                self.values = new_v if self.values is None else torch.cat([self.values, new_v], 2)
        return self.keys, self.values

    def rewind(self, tokens: int) -> None:
        """Forget the blocks past the first `tokens` keys (a tree decoder rolled the cache back)."""
        if self.keys is not None:
            self.keys = self.keys[:, :, : tokens // self.size]
        if self.values is not None:
            self.values = self.values[:, :, : tokens // self.size]


@dataclass
class KeyChannels:
    """A contiguous copy of a fixed set of channels per KV head (`dims` [kv_heads, c]) of every cached key,
    extended as the cache grows: scoring with it reads c/dim of the key bytes instead of all of them."""

    dims: Tensor
    keys: Tensor | None = None  # [batch, kv_heads, n, c]

    def update(self, keys: Tensor) -> Tensor:
        done = 0 if self.keys is None else self.keys.shape[2]
        if keys.shape[2] > done:
            fresh = keys[:, :, done:]
            index = self.dims[None, :, None, :].expand(fresh.shape[0], -1, fresh.shape[2], -1)
            self.keys = append_rows(self.keys, fresh.gather(-1, index))
        return self.keys

    def rewind(self, tokens: int) -> None:
        """Forget the channels of the keys past the first `tokens` (a tree decoder rolled the cache back)."""
        if self.keys is not None:
            self.keys = self.keys[:, :, :tokens]
