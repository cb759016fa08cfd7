"""Reading tokens back out of vLLM's CPU paged cache without knowing its ISA's layout by heart: the layout is
learnt from vLLM's own cache-write op. A probe writes one block whose keys and values encode their own (token,
channel) through that op, and reads where each landed. That gives, per block and KV head, a permutation from
(token, channel) to an offset inside the key tile and the value tile (vec and vec16 store keys channel-major,
AMX packs them; the probe needs to know neither). A layout that is not such a permutation (scales beside the
codes, as in an fp8 cache) is refused with one line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Write = Callable[[Tensor, Tensor, Tensor, Tensor], None]  # (keys, values, kv_cache, slots): vLLM's cache write


class UnreadableLayout(RuntimeError):
    """vLLM stores this cache in a layout the probe cannot invert."""


@dataclass(frozen=True)
class Layout:
    """Offsets [block_size * head_size] inside one (block, KV head) tile: entry t * head_size + d is where token
    t's channel d lives, in the key half and in the value half."""

    keys: Tensor
    values: Tensor
    block_size: int
    head_size: int

    def read(self, kv_cache: Tensor, blocks: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values [len(blocks) * block_size, kv_heads, head_size] of `blocks`, in token order."""
        tiles = kv_cache[blocks]  # [n, kv_heads, block_size, 2 * head_size]: a key tile then a value tile
        return self.token_major(tiles, 0, self.keys), self.token_major(tiles, 1, self.values)

    def read_keys(self, kv_cache: Tensor, blocks: Tensor) -> Tensor:
        """Keys [len(blocks), block_size, kv_heads, head_size] of `blocks`, in token order."""
        keys = self.token_major(kv_cache[blocks], 0, self.keys)
        return keys.view(len(blocks), self.block_size, *keys.shape[1:])

    def token_major(self, tiles: Tensor, half: int, offsets: Tensor) -> Tensor:
        """One half (0: keys, 1: values) of tiles [n, kv_heads, block_size, 2 * head_size] as
        [n * block_size, kv_heads, head_size]."""
        n, heads = tiles.shape[:2]
        flat = tiles.reshape(n, heads, 2, self.block_size * self.head_size)[:, :, half, offsets.to(tiles.device)]
        return flat.view(n, heads, self.block_size, self.head_size).transpose(1, 2).reshape(-1, heads,
                                                                                           self.head_size)


def probe(write: Write, like: Tensor) -> Layout:
    """The layout of a cache like `like` ([blocks, kv_heads, block_size, 2 * head_size]), learnt by writing
    through `write` into a one-block scratch cache, once per coordinate (the codes are integers up to 255, exact
    in bf16 and fp16 as in fp32)."""
    _, heads, block_size, double = like.shape
    head_size = double // 2
    if max(block_size, head_size) > 256:
        raise UnreadableLayout(f"block size {block_size} or head size {head_size} above 256")
    tokens = torch.arange(block_size, device=like.device)
    slots = tokens.to(torch.int64)
    coords = []
    for code in (tokens[:, None, None].expand(block_size, heads, head_size),  # the token
                 torch.arange(head_size, device=like.device).expand(block_size, heads, head_size)):  # the channel
        scratch = torch.full((1, heads, block_size, double), -1.0, dtype=like.dtype, device=like.device)  # unwritten
        value = code.to(like.dtype)
        write(value, value, scratch, slots)
        coords.append(scratch.reshape(heads, 2, block_size * head_size).round().long())
    token, channel = coords
    expected = torch.arange(block_size * head_size, device=like.device)
    offsets = []
    for half in (0, 1):
        flat_index = token[:, half] * head_size + channel[:, half]  # [heads, tile]: which (t, d) each offset holds
        if not (flat_index == flat_index[0]).all() or not torch.equal(flat_index[0].sort().values, expected):
            raise UnreadableLayout("each (token, channel) is not stored exactly once per block and head")
        offsets.append(torch.argsort(flat_index[0]).cpu())
    return Layout(offsets[0], offsets[1], block_size, head_size)
