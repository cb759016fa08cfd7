"""SieveCache: a transformers Cache whose evictions really shrink the stored key/value tensors.

Each full-attention layer stores, per sequence and KV head, the kept tokens' keys, values and cache positions
(the index at which each token entered the cache; equal for every sequence of a batch). Keys keep the RoPE
rotation of their true position; new tokens continue at the true position because the layer reports the
tokens *seen*, not stored, as its sequence length. A left-padded batch records each sequence's padding
(`pads`): a sequence's real position is its cache position minus its padding, and slots below it are padding,
never attended. Sliding-window layers (Gemma 3) keep transformers' own bounded layer.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers.cache_utils import DYNAMIC_LAYER_TYPE_MAPPING, Cache, get_layer_types_and_kwargs

from tokensieve.core.layer import SieveLayer
from tokensieve.core.quant import check_kv_dtype
from tokensieve.core.quant_layer import QuantizedLayer
from tokensieve.core.tensors import storage_bytes

__all__ = ["QuantizedLayer", "SieveCache", "SieveLayer"]


class SieveCache(Cache):
    """One SieveLayer per full-attention layer; other layer types as transformers builds them. `reserve`: rows
    each full-attention layer allocates up front when the run's final size is known (no regrowth). `kv_dtype`:
    the storage precision of the full-attention layers ("fp", "int8", "int4": `QuantizedLayer`)."""

    def __init__(self, config, reserve: int = 0, kv_dtype: str = "fp") -> None:
        text_config = config.get_text_config(decoder=True)
        head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads
        bits = check_kv_dtype(kv_dtype, head_dim)
        layer_types, kwargs = get_layer_types_and_kwargs(text_config)
        layers = [
            DYNAMIC_LAYER_TYPE_MAPPING[kind](**kw) if kind != "full_attention"
            else SieveLayer(reserve) if bits is None else QuantizedLayer(bits, reserve)
            for kind, kw in zip(layer_types, kwargs, strict=True)
        ]
        super().__init__(layers=layers)
        self.kv_dtype = kv_dtype
        self.pads: Tensor | None = None  # [batch] left padding per sequence; None = no padding
        self.pad_counts: list[int] | None = None  # the same as ints (read at every step without a device sync)

    def set_padding(self, attention_mask: Tensor | None) -> None:
        """Record each sequence's left padding from the first forward's 2D mask (1 = token, 0 = padding)."""
        from tokensieve.errors import TokensieveError

        if attention_mask is None or attention_mask.dim() != 2 or bool(attention_mask.all()):
            return
        mask = attention_mask.bool()
        pads = (~mask).sum(-1)
        left = torch.arange(mask.shape[1], device=mask.device)[None, :] >= pads[:, None]
        if not torch.equal(left, mask):
            raise TokensieveError("tokensieve supports left padding only (tokenizer.padding_side = 'left')")
        self.pads = pads
        self.pad_counts = counts = pads.tolist()
        for layer in self.sieve_layers.values():
            layer.pad_slots = list(counts)

    def branch(self) -> SieveCache:
        """An independent copy (every buffer cloned with its spare rows), so that several policies can start from
        one prefill: each evicts or selects in its own copy."""
        import copy

        with torch.inference_mode():
            return copy.deepcopy(self)

    def defer_reads(self, on: bool) -> None:
        """During a forward whose attention is tokensieve's hook (on), quantized layers may leave their codes to
        be read on demand (`QuantizedLayer.gather`); off again after it, so that any other reader of this cache
        gets every row from `update`. See core/quant_layer.py."""
        for layer in self.sieve_layers.values():
            layer.defer_reads(on)

    def compact(self) -> None:
        """Quantize what is cold now in every quantized layer (after the prompt: nothing without `kv_dtype`)."""
        for layer in self.sieve_layers.values():
            layer.compact()

    @property
    def sieve_layers(self) -> dict[int, SieveLayer]:
        return {i: layer for i, layer in enumerate(self.layers) if isinstance(layer, SieveLayer)}

    def kv_bytes(self) -> int:
        """Bytes really allocated for the cache: key/value buffers with their spare rows, plus the positions and
        per-token policy state that a SieveLayer keeps (each storage counted once)."""
        total = 0
        for layer in self.layers:
            if isinstance(layer, SieveLayer):
                total += layer.allocated_bytes()
            else:
                total += storage_bytes([layer.keys, layer.values] if layer.is_initialized else [])
        return total

    def full_kv_bytes(self) -> int:
        """Bytes an unmodified DynamicCache would hold now: every seen token on full layers, as stored on others."""
        total = 0
        for layer in self.layers:
            if layer.keys is None or not layer.is_initialized:
                continue
            batch, heads, _, dim = layer.keys.shape
            tokens = layer.seen if isinstance(layer, SieveLayer) else layer.keys.shape[-2]
            total += 2 * batch * heads * dim * layer.keys.element_size() * tokens
        return total

    def stored_tokens(self) -> list[int]:
        """Tokens stored per layer (per KV head; every head keeps the same count; padding slots included)."""
        return [layer.stored if isinstance(layer, SieveLayer) else 0 if layer.keys is None or layer.keys.numel() == 0
                else layer.keys.shape[-2] for layer in self.layers]
