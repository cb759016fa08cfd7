"""SieveCache: a transformers Cache whose evictions really shrink the stored key/value tensors.

Each full-attention layer stores, per KV head, the kept tokens' keys, values and absolute positions. Keys keep
the RoPE rotation of their original position; new tokens continue at the true position because the layer
reports the number of tokens *seen*, not stored, as its sequence length. For the mask it reports the stored
tokens as the `stored` positions just before the current query, so every kept token stays visible and the
current chunk stays causal. Sliding-window layers (Gemma 3) keep transformers' own bounded layer.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers.cache_utils import (
    DYNAMIC_LAYER_TYPE_MAPPING,
    Cache,
    DynamicLayer,
    get_layer_types_and_kwargs,
)


def _append(stored: Tensor | None, new: Tensor) -> Tensor:
    """`stored` (a view on the token axis, dim 2, of a larger buffer) extended by `new`, returned as a view.

    The buffer grows by 25 % + 64 tokens when full, so decoding n tokens copies O(n) data in total instead of the
    O(n^2) of concatenating the whole cache at every step."""
    if stored is None:
        return new.contiguous()
    length, extra = stored.shape[2], new.shape[2]
    laid_out = stored.dim() == 4 and stored.stride(3) == 1 and stored.stride(2) == stored.shape[3] \
        and stored.stride(0) == stored.shape[1] * stored.stride(1)
    if not laid_out:  # positions [batch, heads, n] (small) or a tensor we did not allocate: concatenate
        return torch.cat([stored, new], 2)
    capacity = stored.stride(1) // stored.stride(2)  # the view's rows per head = its buffer's capacity
    base = stored.as_strided(stored.shape[:2] + (capacity,) + stored.shape[3:], stored.stride())
    if base.shape[2] < length + extra:
        grown = base.new_empty(*base.shape[:2], int((length + extra) * 1.25) + 64, base.shape[3])
        grown[:, :, :length] = stored
        base = grown
    base[:, :, length : length + extra] = new
    return base[:, :, : length + extra]


class SieveLayer(DynamicLayer):
    """A DynamicLayer that knows the absolute position of every stored token and can keep a subset."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.positions: Tensor | None = None  # [batch, kv_heads, stored], long
        self.seen = 0
        self.state: dict[str, Tensor] = {}  # per-token policy state aligned with positions (e.g. H2O scores)

    def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
        """Append into spare capacity (no full copy per decode step, unlike torch.cat on every token)."""
        batch, heads, new, _ = key_states.shape
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.keys = self.values = None
        fresh = torch.arange(self.seen, self.seen + new, device=key_states.device).expand(batch, heads, new)
        self.keys = _append(self.keys, key_states)
        self.values = _append(self.values, value_states)
        self.positions = _append(self.positions, fresh)
        for name, value in self.state.items():
            self.state[name] = torch.cat([value, value.new_zeros(batch, heads, new)], -1)
        self.seen += new
        return self.keys, self.values

    @property
    def stored(self) -> int:
        return 0 if self.positions is None else self.positions.shape[-1]

    def get_seq_length(self) -> int:
        return self.seen

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.stored + query_length, self.seen - self.stored

    def keep(self, indices: Tensor) -> None:
        """Keep only `indices` [batch, kv_heads, k] (sorted) along the token axis; the rest is freed."""
        gather = indices.unsqueeze(-1).expand(-1, -1, -1, self.keys.shape[-1])
        self.keys = self.keys.gather(2, gather).contiguous()
        self.values = self.values.gather(2, gather).contiguous()
        self.positions = self.positions.gather(2, indices)
        self.state = {name: value.gather(2, indices) for name, value in self.state.items()}

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("SieveCache layers cannot be cropped (assisted decoding is not supported)")

    def reset(self) -> None:
        super().reset()
        self.positions, self.seen, self.state = None, 0, {}


class SieveCache(Cache):
    """One SieveLayer per full-attention layer; other layer types as transformers builds them."""

    def __init__(self, config) -> None:
        text_config = config.get_text_config(decoder=True)
        layer_types, kwargs = get_layer_types_and_kwargs(text_config)
        layers = [
            SieveLayer() if kind == "full_attention" else DYNAMIC_LAYER_TYPE_MAPPING[kind](**kw)
            for kind, kw in zip(layer_types, kwargs, strict=True)
        ]
        super().__init__(layers=layers)

    @property
    def sieve_layers(self) -> dict[int, SieveLayer]:
        return {i: layer for i, layer in enumerate(self.layers) if isinstance(layer, SieveLayer)}

    def kv_bytes(self) -> int:
        """Bytes held by stored keys and values across all layers."""
        total = 0
        for layer in self.layers:
            for tensor in (layer.keys, layer.values):
                if tensor is not None:
                    total += tensor.numel() * tensor.element_size()
        return total

    def stored_tokens(self) -> list[int]:
        """Tokens stored per layer (per KV head; every head keeps the same count)."""
        return [0 if layer.keys is None or layer.keys.numel() == 0 else layer.keys.shape[-2] for layer in self.layers]
