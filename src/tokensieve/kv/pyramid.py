from dataclasses import dataclass

from tokensieve.core.budget import Allocation
from tokensieve.core.policy import register
from tokensieve.kv.snapkv import SnapKV


@register("pyramid")
@dataclass
class PyramidKV(SnapKV):
    """PyramidKV (Cai et al., arXiv 2406.02069): SnapKV scores with budgets that shrink from the lowest layer
    to the highest (attention funnels into fewer tokens higher up), same total as a uniform budget."""

    allocation: Allocation = "pyramid"
