from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from tokensieve.core.policy import KVPolicy, register
from tokensieve.core.view import LayerView


@register("snapkv")
@dataclass
class SnapKV(KVPolicy):
    """SnapKV (Li et al., arXiv 2404.14469): the attention of the last `observe` queries, max-pooled over
    neighbours (`kernel`) so that kept tokens bring their context, summed over each KV head's query group."""

    observe: int = 32
    kernel: int = 7

    def score(self, view: LayerView) -> Tensor:
        mass = view.attention_mass(last=self.observe).sum(2)  # [batch, kv_heads, stored]
        batch, heads, n = mass.shape
        pooled = F.max_pool1d(mass.reshape(batch * heads, 1, n), self.kernel, stride=1, padding=self.kernel // 2)
        return pooled.reshape(batch, heads, n)
