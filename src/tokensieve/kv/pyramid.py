from dataclasses import dataclass

from tokensieve.core.budget import Allocation
from tokensieve.kv.snapkv import SnapKV


@dataclass
class PyramidKV(SnapKV):
    """PyramidKV (Cai et al., arXiv 2406.02069): SnapKV scores with budgets that shrink from the lowest layer
    to the highest (attention funnels into fewer tokens higher up), same total as a uniform budget."""

    name = "pyramid"

    allocation: Allocation = "pyramid"
