"""SieveLayer: a cache layer that knows the cache position of every stored token and can keep a subset.

Keys keep the RoPE rotation of their true position; new tokens continue at the true position because the layer
reports the tokens *seen*, not stored, as its sequence length. Appends go into spare rows of a growable buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from transformers.cache_utils import DynamicLayer

from tokensieve.core.tensors import append_rows, gather_rows, storage_bytes, with_room

if TYPE_CHECKING:
    from tokensieve.core.quant import QuantizedRows


@dataclass
class StoredParts:
    """A layer's rows in token order as compiled readers take them (`core.kernels`): `head` rows (a quantized
    layer's sinks), then `codes` (QuantizedRows' six tensors with their `bits` and `group`; none at full
    precision), then the `hot` rows. Each rows tensor is [batch, kv_heads, rows, head_dim]."""

    head_keys: Tensor
    head_values: Tensor
    hot_keys: Tensor
    hot_values: Tensor
    codes: list[Tensor] = field(default_factory=list)
    bits: int = 0
    group: int = 0


class SieveLayer(DynamicLayer):
    """A DynamicLayer that knows the cache position of every stored token and can keep a subset."""

    def __init__(self, reserve: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reserve = reserve  # rows to allocate at the first update (a run whose final size is known)
        self._positions: Tensor | None = None  # [batch, kv_heads, stored, 1] long (a growable buffer)
        self.seen = 0
        self.state: dict[str, Tensor] = {}  # per-token policy state aligned with positions (e.g. H2O scores)
        self.pad_slots: list[int] = []  # stored padding slots per sequence (left padding, fillers after evictions)
        self.skipping: tuple[Tensor, int] | None = None  # the next update's (kept offsets, tokens): `skip_next`

    bits: int | None = None  # storage precision: None at full precision, else the codes' bits (QuantizedLayer)
    group: int | None = None  # tokens per key group of the codes (QuantizedLayer)
    deferred = False  # the last update returned only some rows: the rest are read with gather() (QuantizedLayer)

    def rows(self) -> tuple[Tensor, Tensor]:
        """Every stored key and value [batch, kv_heads, stored, dim] in token order (what attention reads)."""
        return self.keys, self.values

    def gather(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """The keys and values [batch, kv_heads, k, dim] at `indices` [batch, kv_heads, k] (token order slots)."""
        return gather_rows(self.keys, indices), gather_rows(self.values, indices)

    def gather_keys(self, indices: Tensor) -> Tensor:
        """The keys alone at `indices` (a selector that ranks candidates by their keys reads no values)."""
        return gather_rows(self.keys, indices)

    def gather_values(self, indices: Tensor) -> Tensor:
        """The values alone at `indices`."""
        return gather_rows(self.values, indices)

    def stored_parts(self) -> StoredParts:
        """Every stored row, as compiled readers take them: all of them hot here."""
        return StoredParts(self.keys[:, :, :0], self.values[:, :, :0], self.keys, self.values)

    def coded(self) -> QuantizedRows | None:
        """The rows stored as integer codes (a quantized layer's), or None: every row is at full precision."""
        return None

    def compact(self) -> None:
        """Code what is cold now (a quantized layer's rows between its sinks and its window); nothing here."""

    def code_origin(self) -> int:
        """The first slot that may be coded: a quantized layer keeps its first rows (the sinks) at full precision,
        so its codes start there, in whole key groups. 0 here."""
        return 0

    def span(self, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        """The keys and values of slots [lo, hi)."""
        return self.keys[:, :, lo:hi], self.values[:, :, lo:hi]

    def span_keys(self, lo: int, hi: int) -> Tensor:
        """The keys alone of slots [lo, hi) (a page bounded from its rows reads no values)."""
        return self.keys[:, :, lo:hi]

    def defer_reads(self, on: bool) -> None:
        """Let single-token updates return only the rows kept at full precision while tokensieve's hook attends
        (it reads the rest on demand): nothing to defer in a full-precision layer."""

    @property
    def positions(self) -> Tensor | None:
        return None if self._positions is None else self._positions.squeeze(-1)

    def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
        """Append into spare capacity (no full copy per decode step, unlike torch.cat on every token)."""
        batch, heads, new, _ = key_states.shape
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.keys = self.values = None
        if self.skipping is None:
            advance = new
            fresh = torch.arange(self.seen, self.seen + new, device=key_states.device)
            positions = fresh.view(1, 1, new, 1).expand(batch, heads, new, 1)
        else:  # the rows are some of the forward's tokens: each stored at its true position
            kept, advance = self.skipping
            self.skipping = None
            positions = (self.seen + kept)[:, None, :, None].expand(batch, heads, new, 1)
        if self.keys is None and self.reserve > new:  # the whole run's rows, allocated once
            key_states, value_states, positions = (with_room(t, self.reserve - new)
                                                   for t in (key_states, value_states, positions))
        self.keys = append_rows(self.keys, key_states)
        self.values = append_rows(self.values, value_states)
        self._positions = append_rows(self._positions, positions)
        for name, value in self.state.items():
            self.state[name] = torch.cat([value, value.new_zeros(batch, heads, new)], -1)
        self.seen += advance
        return self.keys, self.values

    def skip_next(self, kept: Tensor, tokens: int, reserve: int | None = None) -> None:
        """The next update holds only the tokens at offsets `kept` [batch, n] of a forward of `tokens` tokens (prefill
        skipping): they are stored at their true positions, and `seen` advances by all `tokens`. `reserve` replaces
        the rows a first update allocates."""
        self.skipping = (kept, tokens)
        if reserve is not None and self.keys is None and self.reserve:
            self.reserve = reserve

    def truncate(self, stored: int, seen: int) -> None:
        """Forget the rows past `stored` (their memory stays as spare room) and rewind `seen`."""
        self.keys, self.values, self._positions = (t[:, :, :stored] for t in (self.keys, self.values, self._positions))
        self.state = {name: value[..., :stored] for name, value in self.state.items()}
        self.seen = seen

    def rollback(self, size: int, kept: Tensor) -> None:
        """Of the last `size` rows (a draft tree's), keep those at `kept` (increasing indices into them): they move
        to the front of that span and become consecutive tokens after the rows before it."""
        base, seen, count = self.stored - size, self.seen - size, kept.shape[0]
        rows = base + kept
        for buffer in (self.keys, self.values, self._positions):
            buffer[:, :, base:base + count] = buffer[:, :, rows]
        self.keys, self.values, self._positions = (t[:, :, :base + count]
                                                   for t in (self.keys, self.values, self._positions))
        self._positions[:, :, base:] = torch.arange(seen, seen + count, device=kept.device).view(1, 1, -1, 1)
        self.state = {name: torch.cat([value[..., :base], value[..., rows]], -1) for name, value in self.state.items()}
        self.seen = seen + count

    @property
    def stored(self) -> int:
        return 0 if self._positions is None else self._positions.shape[2]

    @property
    def evicted(self) -> bool:
        return self.stored < self.seen

    def get_seq_length(self) -> int:
        return self.seen

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.stored + query_length, self.seen - self.stored

    def keep(self, indices: Tensor, spare: int = 0, pad_slots: list[int] | None = None) -> None:
        """Keep only `indices` [batch, kv_heads, k] along the token axis; the rest is freed. The new buffers hold
        exactly k rows plus `spare` rows for the tokens expected before the next eviction."""
        self.keys = with_room(gather_rows(self.keys, indices), spare)
        self.values = with_room(gather_rows(self.values, indices), spare)
        self._positions = with_room(gather_rows(self._positions, indices), spare)
        self.state = {name: value.gather(2, indices) for name, value in self.state.items()}
        if pad_slots is not None:
            self.pad_slots = pad_slots

    def allocated_bytes(self) -> int:
        return storage_bytes([self.keys, self.values, self._positions, *self.state.values()])

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("SieveCache layers cannot be cropped (assisted decoding is not supported)")

    def reset(self) -> None:
        super().reset()
        self._positions, self.seen, self.state, self.pad_slots, self.skipping = None, 0, {}, [], None
