"""Row operations on [batch, heads, tokens, dim] tensors that the cache and the selectors share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from functools import lru_cache

import torch
from torch import Tensor


def capacity_rows(view: Tensor) -> int:
    """Token rows per head that the buffer behind `view` holds (>= view.shape[2] when it has spare room)."""
    return view.stride(1) // view.stride(2) if view.dim() == 4 and view.stride(2) else view.shape[2]


def _laid_out(view: Tensor) -> bool:
    """A [b, h, n, d] view on the token axis of a buffer this module allocated (rows contiguous, heads strided)."""
    return (view.dim() == 4 and view.stride(3) == 1 and view.stride(2) == view.shape[3]
            and view.stride(1) % view.shape[3] == 0 and view.stride(0) == view.shape[1] * view.stride(1))


def with_room(rows: Tensor, spare: int) -> Tensor:
    """`rows` copied into a fresh buffer with `spare` empty token rows after it; returned as a view of the rows."""
    batch, heads, n, dim = rows.shape
    buffer = rows.new_empty(batch, heads, n + spare, dim)
    buffer[:, :, :n] = rows
    return buffer[:, :, :n]


def append_rows(stored: Tensor | None, new: Tensor) -> Tensor:
    """`stored` (a view on the token axis, dim 2, of a larger buffer) extended by `new`, returned as a view.

    Appends go into spare rows; a full buffer grows by 25 % + 64 rows, so decoding n tokens copies O(n) data in
    total instead of the O(n^2) of concatenating the whole cache at every step."""
    if stored is None:  # a first block laid out with spare rows (a reserve) keeps them
        return new if _laid_out(new) else new.contiguous()
    if not _laid_out(stored):  # positions [batch, heads, n] or a tensor we did not lay out: concatenate
        return torch.cat([stored, new], 2)
    length, extra = stored.shape[2], new.shape[2]
    if capacity_rows(stored) < length + extra:
        stored = with_room(stored, extra + (length + extra) // 4 + 64)
    base = stored.as_strided(stored.shape[:2] + (length + extra,) + stored.shape[3:], stored.stride())
    base[:, :, length:] = new
    return base


def gather_rows(tensor: Tensor, idx: Tensor) -> Tensor:
    """[batch, heads, n, dim] gathered at idx [batch, heads, k] -> [batch, heads, k, dim] (a new tensor).

    Rows are copied whole with one `index_select` over the rows of the underlying buffer (the cache's growable
    buffer is a strided view): ~10x faster on CPU than `gather` with an index expanded per channel."""
    return RowGather(idx)(tensor)


@lru_cache(maxsize=256)
def row_starts(batch: int, heads: int, batch_rows: int, head_rows: int, device: torch.device) -> Tensor:
    """[batch, heads, 1]: the first row of each (sequence, head) in a buffer's flat rows (cached: a decode step
    gathers from the same few layouts in every layer)."""
    return (torch.arange(batch, device=device).view(-1, 1, 1) * batch_rows
            + torch.arange(heads, device=device).view(1, -1, 1) * head_rows)


class RowGather:
    """The rows at idx [batch, heads, k] of several [batch, heads, n, dim] tensors (`gather_rows` for each), the
    flat row index computed once per buffer layout: codes and scales of one selection share it."""

    def __init__(self, idx: Tensor) -> None:
        self.idx = idx
        self.flat: dict[tuple[int, int], Tensor] = {}

    def __call__(self, tensor: Tensor) -> Tensor:
        batch, heads, _, dim = tensor.shape
        s0, s1, s2, s3 = tensor.stride()
        idx = self.idx
        if s3 != 1 or s2 != dim or s1 % dim or s0 % dim:
            return tensor.gather(2, idx.unsqueeze(-1).expand(-1, -1, -1, dim))
        layout = (s0 // dim, s1 // dim)
        if layout not in self.flat:
            self.flat[layout] = (row_starts(batch, heads, *layout, idx.device) + idx).flatten()
        rows_total = (batch - 1) * layout[0] + (heads - 1) * layout[1] + tensor.shape[2]
        rows = tensor.as_strided((rows_total, dim), (dim, 1))
        return rows.index_select(0, self.flat[layout]).view(batch, heads, idx.shape[-1], dim)


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind `tensors` (spare capacity included, shared buffers counted once)."""
    seen: dict[int, int] = {}
    for tensor in tensors:
        if tensor is not None:
            storage = tensor.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def tensors_in(value, depth: int = 0) -> Iterator[Tensor]:
    """Every tensor reachable from `value` through dicts, lists, tuples, dataclasses and object attributes (at
    most five levels deep): what an object really holds, found by walking it rather than by its own accounting."""
    if isinstance(value, Tensor):
        yield value
    elif depth > 4:
        return
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from tensors_in(item, depth + 1)
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from tensors_in(getattr(value, f.name), depth + 1)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        yield from tensors_in(vars(value), depth + 1)
