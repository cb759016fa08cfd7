from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from tokensieve.core.policy import KVPolicy
from tokensieve.core.view import LayerView
from tokensieve.errors import TokensieveError


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class SnapKV(KVPolicy):
    """SnapKV (Li et al., arXiv 2404.14469): the attention of the last `observe` queries, max-pooled over
    neighbours (`kernel`) so that kept tokens bring their context, summed over each KV head's query group."""

    name = "snapkv"

    observe: int = 32
    kernel: int = 7  # odd: the pooling window is centred on each token (kernel // 2 neighbours each side)

    def prompt_window(self) -> int:
        return self.observe

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _whole(self.kernel) or self.kernel < 1 or self.kernel % 2 == 0:
            hint = f"; use {self.kernel - 1} or {self.kernel + 1}" if _whole(self.kernel) and self.kernel > 1 else ""
            raise TokensieveError(f"policy '{self.name}': option kernel={self.kernel!r} must be an odd whole number "
                                  f">= 1 (the pooling window is centred on each token){hint}")
        if not _whole(self.observe) or self.observe < 1:
            raise TokensieveError(f"policy '{self.name}': option observe={self.observe!r} must be a whole number >= 1")

    def score(self, view: LayerView) -> Tensor:
        mass = view.attention_mass(last=self.observe).sum(2)  # [batch, kv_heads, stored]
        batch, heads, n = mass.shape
        pooled = F.max_pool1d(mass.reshape(batch * heads, 1, n), self.kernel, stride=1, padding=self.kernel // 2)
        return pooled.reshape(batch, heads, n)
