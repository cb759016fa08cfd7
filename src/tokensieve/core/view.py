"""What a scorer sees of one layer at a compression point: this forward's queries and the stored cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class LayerView:
    layer_idx: int
    layer_rank: int  # position among the layers a policy compresses (0 = lowest)
    n_layers: int  # how many layers the policy compresses
    queries: Tensor  # [batch, q_heads, q, dim], rotated exactly as the model rotated them
    keys: Tensor  # [batch, kv_heads, stored, dim], the cache after this forward's update
    values: Tensor  # [batch, kv_heads, stored, dim]
    positions: Tensor  # [batch, kv_heads, stored], absolute token positions
    seen: int  # tokens seen so far, including this forward's
    scaling: float
    state: dict[str, Tensor]  # per-token policy state, kept aligned with `positions` by the cache
    pads: Tensor | None = None  # [batch] left padding per sequence (None = no padding)

    @property
    def valid(self) -> Tensor | None:
        """bool [batch, kv_heads, stored]: False on padding slots; None when the batch has no padding."""
        return None if self.pads is None else self.positions >= self.pads.view(-1, 1, 1)

    @property
    def group(self) -> int:
        return self.queries.shape[1] // self.keys.shape[1]

    def attention(self, last: int | None = None, block: int = 256) -> Tensor:
        """Softmax attention of the last `last` queries (all if None) over the stored keys, causal by absolute
        position, per KV head and its query-head group: [batch, kv_heads, group, q, stored]."""
        return torch.cat(list(self._attention_blocks(last, block)), dim=-2)

    def attention_mass(self, last: int | None = None, block: int = 256) -> Tensor:
        """Attention each stored token receives, summed over the chosen queries (padding queries excluded):
        [batch, kv_heads, group, stored], computed block by block so memory stays bounded."""
        total = None
        for probs in self._attention_blocks(last, block):
            part = probs.sum(-2)
            total = part if total is None else total + part
        return total

    def _attention_blocks(self, last: int | None, block: int):
        batch, q_heads, q_len, dim = self.queries.shape
        kv_heads = self.keys.shape[1]
        start = 0 if last is None else max(0, q_len - last)
        query_pos = torch.arange(self.seen - q_len, self.seen, device=self.keys.device)
        grouped = self.queries.reshape(batch, kv_heads, self.group, q_len, dim)
        valid = self.valid
        for lo in range(start, q_len, block):
            hi = min(q_len, lo + block)
            logits = torch.einsum("bhgqd,bhsd->bhgqs", grouped[..., lo:hi, :].float(), self.keys.float())
            hidden = self.positions[:, :, None, None, :] > query_pos[lo:hi][None, None, None, :, None]
            if valid is not None:  # padding keys are hidden from real queries; padding queries count for nothing
                real_query = query_pos[lo:hi][None, :] >= self.pads[:, None]  # [batch, q]
                hidden = hidden | (~valid[:, :, None, None, :] & real_query[:, None, None, :, None])
            probs = torch.softmax(logits.mul_(self.scaling).masked_fill_(hidden, float("-inf")), dim=-1)
            if valid is not None:
                probs = probs * real_query[:, None, None, :, None]
            yield probs
