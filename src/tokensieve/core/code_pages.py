"""Page summaries of a quantized store's keys, kept in the code domain (for Quest over `--kv-dtype int8|int4`).

A key group of the store (`core/quant.py`: `group` consecutive coded rows, one float16 minimum and step per
channel) holds whole pages when the page size divides the group. Within a group a key is `code * step + min`,
which grows with its code, so a page's smallest and largest key per channel are those of its smallest and largest
code. Keeping those two codes (packed as the keys are: 1 byte a channel at int4, 2 at int8) therefore gives
exactly the bounds of the dequantized keys, for an eighth (int4) or a quarter (int8) of float32 bounds' bytes.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import Tensor

from tokensieve.core.quant import QuantizedRows, pack_codes, unpack_codes


def summarises(page: int, group: int) -> bool:
    """Whether pages of `page` rows can be summarised in the code domain of key groups of `group` rows."""
    return group % page == 0


def code_page_bytes(pages: int, heads: int, head_dim: int, bits: int) -> int:
    """Bytes of `pages` pages' summaries per layer: a minimum and a maximum code per channel and KV head."""
    return pages * heads * 2 * head_dim * bits // 8


@dataclass
class CodePages:
    """Per complete page of `size` coded rows, each channel's smallest and largest key code, taken once as the
    store's rows arrive (`update`). A new store (the layer was thawed and coded again) starts over."""

    size: int
    codes: Tensor | None = None  # [batch, kv_heads, pages, 2 * packed head_dim] uint8: minimum codes, then maximum
    source: weakref.ref | None = None  # the QuantizedRows summarised (a weak reference: its bytes are the cache's)

    @property
    def pages(self) -> int:
        return 0 if self.codes is None else self.codes.shape[2]

    def update(self, rows: QuantizedRows | None) -> Tensor | None:
        """The summaries of every complete page of `rows`' coded rows (new pages read once); None without codes."""
        if rows is None:
            self.rewind(0)
            return None
        if not summarises(self.size, rows.group):
            raise ValueError(f"pages of {self.size} do not lie within key groups of {rows.group}")
        if self.source is None or self.source() is not rows:
            self.codes, self.source = None, weakref.ref(rows)
        done, complete = self.pages, rows.rows // self.size
        if complete > done:
            fresh = unpack_codes(rows.key_codes[:, :, done * self.size: complete * self.size], rows.bits)
            fresh = fresh.unflatten(2, (complete - done, self.size))
            summary = torch.cat([pack_codes(fresh.amin(3), rows.bits), pack_codes(fresh.amax(3), rows.bits)], -1)
            self.codes = summary if self.codes is None else torch.cat([self.codes, summary], 2)
        return self.codes

    def rewind(self, tokens: int) -> None:
        """Start over (a tree decoder rolled the cache back, so the layer thaws and codes its rows anew)."""
        self.codes = self.source = None

    def bounds(self, rows: QuantizedRows, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Each summarised page's key minimum and maximum per channel [batch, kv_heads, pages, head_dim], computed
        as the store dequantizes (`code * step + min` in float32), so equal to the dequantized keys' own. On CPU one
        compiled loop does it (`core.kernels`, bit-identical) where it can be built."""
        compiled = rows.kernels(self.codes.device)
        if compiled is not None:
            low, high = compiled.code_page_bounds(self.codes, rows.key_low, rows.key_step, rows.bits, self.size,
                                                  rows.group)
            return low.to(dtype), high.to(dtype)
        codes = unpack_codes(self.codes, rows.bits).float()  # [b, h, pages, 2 * dim]: minimum, then maximum codes
        b, h, pages, dim = *codes.shape[:3], codes.shape[3] // 2
        groups = pages * self.size // rows.group

        def per_page(scale: Tensor) -> Tensor:  # each group's scales repeated for its pages
            widened = scale[:, :, :groups, None].float()
            return widened.expand(b, h, groups, pages // groups, dim).reshape(b, h, pages, dim)

        low, step = per_page(rows.key_low), per_page(rows.key_step)
        return (codes[..., :dim] * step + low).to(dtype), (codes[..., dim:] * step + low).to(dtype)
