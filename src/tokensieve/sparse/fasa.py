from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from tokensieve.core.policy import register
from tokensieve.sparse.base import KeyChannels, SelectPolicy


def chunk_contributions(q: Tensor, k: Tensor) -> Tensor:
    """|q·k| split by RoPE frequency pair (i, i + dim/2) under transformers' rotate_half layout.

    q [b, h, g, d], k [b, h, n, d] -> [h, d/2] mean absolute contribution of each frequency chunk."""
    half = q.shape[-1] // 2
    parts = q.unsqueeze(3) * k.unsqueeze(2)  # [b, h, g, n, d]
    pair = parts[..., :half] + parts[..., half:]
    return pair.abs().mean(dim=(0, 2, 3))


@register("fasa")
@dataclass
class FASA(SelectPolicy):
    """FASA, frequency-aware sparse attention: a few RoPE frequency chunks dominate each head's Q·K. A calibration
    pass finds, per layer and KV head, the `chunks` dominant frequency pairs (stored as JSON per model); at
    decode, tokens are scored with only those chunks, and attention runs exactly over the selected subset.

    `calibration`: path of the JSON file; when absent, the first decode step of each layer calibrates on the
    current prompt and the file is written (`tokensieve calibrate` precomputes it on real prose)."""

    chunks: int = 8
    calibration: str | None = None
    table: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.calibration and Path(self.calibration).exists():
            self.table = {int(k): v for k, v in json.loads(Path(self.calibration).read_text()).items()}

    def dominant(self, module, q: Tensor, keys: Tensor) -> Tensor:
        layer = module.layer_idx
        if layer not in self.table:
            sample = keys[:, :, -min(keys.shape[2], 2048):]
            self.table[layer] = chunk_contributions(q.float(), sample.float()).topk(self.chunks, -1).indices.tolist()
            if self.calibration:
                Path(self.calibration).write_text(json.dumps(self.table))
        return torch.tensor(self.table[layer], device=keys.device)  # [kv_heads, chunks]

    def scores(self, session, module, q: Tensor, keys: Tensor) -> Tensor:
        pairs = self.dominant(module, q, keys)
        dims = torch.cat([pairs, pairs + q.shape[-1] // 2], -1)  # [kv_heads, 2*chunks]
        k_part = self.scratch(session, module, "fasa", lambda: KeyChannels(dims)).update(keys)
        q_part = q.gather(-1, dims[None, :, None, :].expand(q.shape[0], -1, q.shape[2], -1))
        return torch.einsum("bhgd,bhnd->bhgn", q_part, k_part).amax(2)
