"""Rolling positions: keys re-rotated to their slot in the cache (StreamingLLM's position shift).

RoPE rotations compose, R(a) R(b) = R(a + b), so a key rotated at position p moves to slot s by one more rotation
by s - p: no need to keep unrotated keys. transformers' `rotate_half` layout (pairs i, i + dim/2) is assumed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tokensieve.errors import TokensieveError


def rotate(x: Tensor, delta: Tensor | int, inv_freq: Tensor) -> Tensor:
    """x [..., n, dim] rotated by `delta` positions (an int, or a tensor broadcastable to x's [..., n])."""
    delta = torch.as_tensor(delta, device=x.device)
    angles = delta[..., None].float() * inv_freq.to(x.device, torch.float32)  # [..., n, dim/2]
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)
    half = x.shape[-1] // 2
    rotated_half = torch.cat([-x[..., half:], x[..., :half]], -1)
    return (x.float() * cos + rotated_half.float() * sin).to(x.dtype)


def full_attention_inv_freq(model, head_dim: int) -> Tensor:
    """The inverse frequencies a model's full-attention layers rotate with; refused where rolling cannot work."""
    config = model.config.get_text_config()
    if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or []):
        raise TokensieveError("positions=rolling needs a model whose layers all use full attention "
                              f"({type(model).__name__} mixes in sliding-window layers, which keep true positions)")
    for module in model.modules():
        for name in ("full_attention_inv_freq", "inv_freq"):
            freq = getattr(module, name, None)
            if isinstance(freq, Tensor):
                if freq.numel() * 2 != head_dim:
                    raise TokensieveError("positions=rolling needs RoPE over the whole head (partial rotary found)")
                return freq
    raise TokensieveError(f"positions=rolling needs a RoPE model; {type(model).__name__} has no rotary embedding")
