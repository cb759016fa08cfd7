"""A SieveLayer whose cold rows are stored as integer codes (`core/quant.py`), orthogonal to every policy.

Rows are kept in token order in three parts: the first `sinks` rows and the newest rows (at least `window`) in the
compute dtype, everything between them as codes. A prompt goes in at full precision, so a policy scores and
evicts it exactly as over an fp cache; `compact()` then quantizes the rows between the sinks and the window in
whole groups. It runs after the prompt (the run loop calls it, and a one-token update does it by itself), and
whenever `window + group` rows have gathered: appended rows are quantized once, old rows are never requantized.
An operation that rewrites rows at arbitrary indices (an eviction during decode, a tree's rollback) first thaws
the codes back to full precision (`thaw`), so its result is exact over what was stored; the next compaction
quantizes them again. Attention reads `rows()`: the codes dequantized for that one layer and forward.

During a forward under tokensieve's hook (`defer_reads`, set and cleared around each forward by `apply()` and
the server's packed step), a decode step's update returns only the rows after the codes and marks the layer
`deferred`: the session's hook then reads `rows()` for an attender that reads every row, and an
attender that reads a selection (Quest's pages) dequantizes only the rows it selected, with `gather()`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tokensieve.core.layer import SieveLayer, StoredParts
from tokensieve.core.quant import GROUP, SINKS, WINDOW, QuantizedRows
from tokensieve.core.tensors import RowGather, storage_bytes, with_room


class QuantizedLayer(SieveLayer):
    """`keys` / `values` hold the full-precision rows after the sinks and the codes (the newest ones); `head_*` the
    sinks; `cold` the codes. `rows()` is the whole layer in token order."""

    def __init__(self, bits: int, reserve: int = 0, sinks: int = SINKS, window: int = WINDOW, group: int = GROUP,
                 **kwargs) -> None:
        super().__init__(reserve, **kwargs)
        self.bits, self.sinks, self.window, self.group = bits, sinks, window, group
        self.cold: QuantizedRows | None = None
        self.head_keys: Tensor | None = None
        self.head_values: Tensor | None = None
        self.defers = False  # tokensieve's hook attends this forward and reads codes on demand (`defer_reads`)
        self.deferred = False

    @property
    def frozen(self) -> int:
        """Rows held outside `keys` / `values`: the sinks and the codes."""
        head = 0 if self.head_keys is None else self.head_keys.shape[2]
        return head + (0 if self.cold is None else self.cold.rows)

    def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
        step = key_states.shape[2] == 1
        if step and self.keys is not None:  # decode: the prompt's rows are cold by now
            self.compact()
        super().update(key_states, value_states, *args, **kwargs)
        self.deferred = self.defers and step and self.frozen > 0
        return (self.keys, self.values) if self.deferred else self.rows()

    def defer_reads(self, on: bool) -> None:
        self.defers = on

    def gather(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Rows at `indices` [batch, kv_heads, k]: only the selected codes are dequantized. On CPU in float32 one
        compiled loop reads all three parts (`core.kernels`; bit-identical to the torch path)."""
        return self.read(indices, True, True)

    def gather_keys(self, indices: Tensor) -> Tensor:
        return self.read(indices, True, False)[0]

    def gather_values(self, indices: Tensor) -> Tensor:
        return self.read(indices, False, True)[1]

    def read(self, indices: Tensor, keys: bool, values: bool) -> tuple[Tensor | None, Tensor | None]:
        """The keys and / or values (None where not asked for) at `indices`, from the sinks, codes and newest rows."""
        if not self.frozen:
            return (super().gather_keys(indices) if keys else None,
                    super().gather_values(indices) if values else None)
        compiled = self.cold.kernels(indices.device) if self.keys.dtype == torch.float32 else None
        if compiled is not None:
            got = compiled.gather_layer(indices, self.head_keys, self.head_values, self.keys, self.values,
                                        *self.cold.tensors(), self.cold.bits, self.cold.group, keys, values)
            return got[0] if keys else None, got[1] if values else None
        sinks, coded = self.head_keys.shape[2], self.cold.rows
        cold = self.cold.dequantize_rows((indices - sinks).clamp(0, coded - 1), self.keys.dtype, keys=keys,
                                         values=values)
        # the sinks and the hot rows, all in the compute dtype, as one small buffer in token order
        warm = RowGather(torch.where(indices < sinks, indices, (indices - coded).clamp(min=sinks)))
        in_cold = ((indices >= sinks) & (indices < sinks + coded))[..., None]
        parts = ((self.head_keys, self.keys), (self.head_values, self.values))
        return tuple(torch.where(in_cold, rows, warm(torch.cat(pair, 2))) if rows is not None else None
                     for rows, pair in zip(cold, parts, strict=True))

    def stored_parts(self) -> StoredParts:
        if not self.frozen:
            return super().stored_parts()
        codes = [] if self.cold is None else self.cold.tensors()
        return StoredParts(self.head_keys, self.head_values, self.keys, self.values, codes, self.bits, self.group)

    def coded(self) -> QuantizedRows | None:
        return self.cold

    def code_origin(self) -> int:
        return self.sinks

    def span(self, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        if not self.frozen:
            return super().span(lo, hi)
        return self.gather(self.slots_between(lo, hi))

    def span_keys(self, lo: int, hi: int) -> Tensor:
        if not self.frozen:
            return super().span_keys(lo, hi)
        return self.gather_keys(self.slots_between(lo, hi))

    def slots_between(self, lo: int, hi: int) -> Tensor:
        """Slots [lo, hi) as gather indices [batch, kv_heads, hi - lo]."""
        batch, heads = self.keys.shape[:2]
        return torch.arange(lo, hi, device=self.keys.device).expand(batch, heads, hi - lo)

    def rows(self) -> tuple[Tensor, Tensor]:
        if not self.frozen:
            return self.keys, self.values
        keys, values = [self.head_keys], [self.head_values]
        if self.cold is not None:
            cold_keys, cold_values = self.cold.dequantize(self.keys.dtype)
            keys.append(cold_keys)
            values.append(cold_values)
        return torch.cat([*keys, self.keys], 2), torch.cat([*values, self.values], 2)

    def compact(self) -> None:
        """Quantize the full-precision rows between the sinks and the newest `window`, in whole groups."""
        if self.keys is None:
            return
        if self.head_keys is None:
            if self.keys.shape[2] <= self.sinks + self.window + self.group:
                return
            self.head_keys, self.head_values = (t[:, :, :self.sinks].clone() for t in (self.keys, self.values))
            self.keys, self.values = (with_room(t[:, :, self.sinks:], 0) for t in (self.keys, self.values))
        hot = self.keys.shape[2]
        n = (hot - self.window) // self.group * self.group
        if n <= 0:
            return
        first = self.cold is None
        if first:
            self.cold = QuantizedRows(self.bits, self.group)
        self.cold.append(self.keys[:, :, :n], self.values[:, :, :n], spare=self.group if first else 0)
        room = self.window + self.group - (hot - n)  # what arrives before the next compaction, and no more
        self.keys, self.values = (with_room(t[:, :, n:], room) for t in (self.keys, self.values))

    def thaw(self) -> None:
        """Back to one full-precision buffer in token order (before rows are rewritten at arbitrary indices)."""
        if self.frozen:
            self.keys, self.values = self.rows()
            self.head_keys = self.head_values = self.cold = None
            self.deferred = False

    def keep(self, indices: Tensor, spare: int = 0, pad_slots: list[int] | None = None) -> None:
        self.thaw()
        super().keep(indices, spare, pad_slots)

    def truncate(self, stored: int, seen: int) -> None:
        self.thaw()
        super().truncate(stored, seen)

    def rollback(self, size: int, kept: Tensor) -> None:
        self.thaw()
        super().rollback(size, kept)

    def allocated_bytes(self) -> int:
        cold = [] if self.cold is None else self.cold.tensors()
        return super().allocated_bytes() + storage_bytes([self.head_keys, self.head_values, *cold])

    def reset(self) -> None:
        super().reset()
        self.cold, self.head_keys, self.head_values, self.deferred = None, None, None, False
