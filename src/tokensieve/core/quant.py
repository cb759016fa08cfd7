"""KV storage precision: asymmetric integer codes for cached keys and values (KIVI, Liu et al., arXiv 2402.02750).

Keys are quantized per channel over groups of `group` consecutive tokens (a key channel's outliers stay within
its own scale), values per token over groups of `group` channels (values have no outlier channels; an error
stays in its token). Each group stores its minimum and step in float16: code = round((x - min) / step), with
2^bits - 1 steps over [min, max]. int4 packs two codes per byte along the channels (head_dim must be even).

Bits per element, with groups of 32 and float16 scales: int8 9 (keys: 8 + 32 / 32; values: the same), int4 5;
against 32 for a float32 cache, so 0.28x and 0.16x before the full-precision rows (sinks and the recent window)
and the positions are added. Groups of 32 halve the scale bytes of KIVI's per-channel groups of 16 while keeping
a key group's range to about one page of tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.kernels import optional
from tokensieve.core.tensors import RowGather, append_rows, capacity_rows, storage_bytes, with_room
from tokensieve.errors import TokensieveError

KV_DTYPES = ("fp", "int8", "int4")
GROUP = 32  # tokens per key group, channels per value group
SINKS, WINDOW = 4, 32  # rows a quantized layer keeps in the compute dtype: the first ones, and at least the newest
_SCALE = torch.float16


def check_kv_dtype(kv_dtype: str, head_dim: int | None = None) -> int | None:
    """The bits of a KV storage precision ("fp": None, full precision), or one clear error."""
    if kv_dtype not in KV_DTYPES:
        raise TokensieveError(f"unknown kv dtype '{kv_dtype}': choose from {', '.join(KV_DTYPES)}")
    bits = None if kv_dtype == "fp" else int(kv_dtype[3:])
    if head_dim is not None and bits is not None:
        if bits == 4 and head_dim % 2:
            raise TokensieveError(f"int4 packs two channels a byte: head_dim {head_dim} is odd; use int8")
        if head_dim % min(GROUP, head_dim):
            raise TokensieveError(f"{kv_dtype} groups values by {GROUP} channels: head_dim {head_dim} does not divide")
    return bits


def _codes(x: Tensor, dim: int, bits: int) -> tuple[Tensor, Tensor, Tensor]:
    """uint8 codes of x with one (min, step) per slice along `dim` (kept as a size-1 dim), both float16."""
    low, high = x.amin(dim, keepdim=True), x.amax(dim, keepdim=True)
    levels = 2 ** bits - 1
    low16 = low.clamp(-65504, 65504).to(_SCALE)
    step16 = ((high - low16.float()) / levels).clamp(min=1e-8, max=65504).to(_SCALE)
    codes = ((x.float() - low16.float()) / step16.float()).round_().clamp_(0, levels).to(torch.uint8)
    return codes, low16, step16


def pack_codes(codes: Tensor, bits: int) -> Tensor:
    """uint8 codes [..., dim] as stored: int8 as they are, int4 two a byte along the last dim (low nibble first)."""
    return codes if bits == 8 else codes[..., 0::2] | (codes[..., 1::2] << 4)


def unpack_codes(packed: Tensor, bits: int) -> Tensor:
    """The codes `pack_codes` stored, one uint8 per element."""
    if bits == 8:
        return packed
    return torch.stack([packed & 15, packed >> 4], -1).flatten(-2)


@dataclass
class QuantizedRows:
    """Token rows [batch, heads, n, dim] held as codes: n is always whole key groups. Buffers grow in place
    (`append_rows`) and are counted with their spare rows."""

    bits: int
    group: int
    key_codes: Tensor | None = None  # [b, h, n, dim or dim / 2] uint8
    key_low: Tensor | None = None  # [b, h, n / group, dim] float16: one per channel and token group
    key_step: Tensor | None = None
    value_codes: Tensor | None = None
    value_low: Tensor | None = None  # [b, h, n, dim / group]: one per token and channel group
    value_step: Tensor | None = None

    @property
    def rows(self) -> int:
        return 0 if self.key_codes is None else self.key_codes.shape[2]

    def append(self, keys: Tensor, values: Tensor, spare: int = 0) -> None:
        """Quantize whole groups of rows and append them; a first append leaves `spare` rows of room."""
        b, h, n, d = keys.shape
        g, vg = self.group, min(self.group, d)
        kc, klow, kstep = _codes(keys.reshape(b, h, n // g, g, d), 3, self.bits)
        vc, vlow, vstep = _codes(values.reshape(b, h, n, d // vg, vg), 4, self.bits)
        parts = {"key_codes": pack_codes(kc.reshape(b, h, n, d), self.bits), "key_low": klow[:, :, :, 0],
                 "key_step": kstep[:, :, :, 0], "value_codes": pack_codes(vc.reshape(b, h, n, d), self.bits),
                 "value_low": vlow[..., 0], "value_step": vstep[..., 0]}
        slack = max(2 * g, self.rows // 16)  # a full buffer grows by 1/16 (append_rows' 25 % would be counted)
        for name, new in parts.items():
            old, per = getattr(self, name), g if name in ("key_low", "key_step") else 1  # tokens a row holds
            if old is None and spare:
                new = with_room(new.contiguous(), spare // per)
            elif old is not None and capacity_rows(old) < old.shape[2] + new.shape[2]:
                old = with_room(old, new.shape[2] + slack // per)
            setattr(self, name, append_rows(old, new))

    def dequantize(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Keys and values [b, h, n, dim] in `dtype`."""
        b, h, n, _ = self.key_codes.shape
        g = self.group
        kc = unpack_codes(self.key_codes, self.bits).float()
        d = kc.shape[-1]
        keys = kc.view(b, h, n // g, g, d) * self.key_step.float()[:, :, :, None] + self.key_low.float()[:, :, :, None]
        vg = min(g, d)
        vc = unpack_codes(self.value_codes, self.bits).float().view(b, h, n, d // vg, vg)
        values = vc * self.value_step.float()[..., None] + self.value_low.float()[..., None]
        return keys.view(b, h, n, d).to(dtype), values.view(b, h, n, d).to(dtype)

    def dequantize_rows(self, rows: Tensor, dtype: torch.dtype, kernel: bool = True, keys: bool = True,
                        values: bool = True) -> tuple[Tensor | None, Tensor | None]:
        """Keys and values [b, h, k, dim] in `dtype` of the coded rows at `rows` [b, h, k]: only those rows' codes
        and scales are read, and only the parts asked for (`keys`, `values`; None for the other). Each element is
        computed as `dequantize` computes it, so the two agree exactly. On CPU one compiled loop does it
        (`core.kernels`, bit-identical) where it can be built, unless not `kernel`."""
        compiled = self.kernels(rows.device) if kernel else None
        if compiled is not None:
            got = compiled.dequantize_rows(rows, *self.tensors(), self.bits, self.group, keys, values)
            return tuple(t.to(dtype) if wanted else None for t, wanted in zip(got, (keys, values), strict=True))
        g = self.group
        by_row = RowGather(rows)
        key_rows = value_rows = None
        if keys:
            by_group = RowGather(rows // g)
            kc = unpack_codes(by_row(self.key_codes), self.bits).float()
            key_rows = (kc * by_group(self.key_step).float() + by_group(self.key_low).float()).to(dtype)
        if values:
            b, h, k = rows.shape
            d = self.key_low.shape[-1]
            vg = min(g, d)
            vc = unpack_codes(by_row(self.value_codes), self.bits).float().view(b, h, k, d // vg, vg)
            steps, lows = by_row(self.value_step).float()[..., None], by_row(self.value_low).float()[..., None]
            value_rows = (vc * steps + lows).view(b, h, k, d).to(dtype)
        return key_rows, value_rows

    def kernels(self, device: torch.device):
        """The compiled CPU kernels (`core.kernels`) when they can read these codes: on CPU, with head_dim and the
        value groups in whole vectors of 8; else None (the torch path, with the same results)."""
        dim = self.key_low.shape[-1]
        if device.type != "cpu" or dim % 8 or min(self.group, dim) % 8:
            return None
        return optional()

    def tensors(self) -> list[Tensor | None]:
        return [self.key_codes, self.key_low, self.key_step, self.value_codes, self.value_low, self.value_step]

    def nbytes(self) -> int:
        return storage_bytes(self.tensors())
