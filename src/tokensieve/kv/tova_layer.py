from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from tokensieve.core.view import LayerView
from tokensieve.kv.tova import TOVA


@dataclass
class TOVALayer(TOVA):
    """TOVA (Oren et al., arXiv 2401.06104) as its paper runs it: one choice per layer, the newest query's
    attention averaged over all heads, where `tova` chooses per KV head (averaged over its query group only).
    kvpress's TOVAPress is also layer-wise; this variant tells which of the two choices costs quality."""

    name = "tova_layer"
    peer_press: ClassVar[str] = "tova"  # the report compares it with kvpress's TOVAPress head to head

    def score(self, view: LayerView) -> Tensor:
        per_head = super().score(view)  # [batch, kv_heads, stored]
        return per_head.mean(1, keepdim=True).expand_as(per_head)
