"""Token skipping composed with a second method on the tokens that remain (issue: do they compose?).

`fastv+snapkv`: FastV's stage in every prompt forward, then SnapKV evicts each layer's cache to its budget; with
`--chunk` this is chunked prefill with eviction, where each chunk's own last tokens score it. `fastv+hisa`:
HISA's block-sparse attention for prompt queries in every layer (64-token blocks), FastV's stage at half the
depth, and HISA's selection at decode: sparse attention saves most in the layers before the stage, which carry
every token. In both, `budget` is the second method's and `skip_keep` the share of each prompt forward carried
past the stage. Each is a `Stacked` policy: a FastV part and a SnapKV or HISA part, built from one flat set of
options, each running as it runs alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokensieve.core.budget import Budget
from tokensieve.core.policy import Stacked
from tokensieve.errors import TokensieveError
from tokensieve.kv.snapkv import SnapKV
from tokensieve.prefill.fastv import FastV
from tokensieve.sparse.hisa import HISA


@dataclass
class SkipThen(Stacked):
    """FastV's options, shared by both combinations: its stage carries `skip_keep` of each prompt forward."""

    probe: int = 64
    last: int = 64
    layer: float = 0.5
    skip_keep: float = 0.5

    def fastv(self, kernel: int) -> FastV:
        if not 0 < self.skip_keep <= 1:
            raise TokensieveError(f"skip_keep must be in (0, 1], got {self.skip_keep}")
        keep = Budget(self.skip_keep, sinks=self.budget.sinks, window=self.budget.window)
        return FastV(budget=keep, probe=self.probe, last=self.last, kernel=kernel, layer=self.layer)


@dataclass
class FastVSnapKV(SkipThen):
    """FastV (arXiv 2403.06764) token skipping, then SnapKV (arXiv 2404.14469) eviction of each layer's cache."""

    name = "fastv+snapkv"
    stacks = (FastV, SnapKV)

    allocation: str = "uniform"
    evict_every: int = 0
    positions: str = "true"
    observe: int = 32
    kernel: int = 7  # SnapKV's own pooling, as in `snapkv`
    skip_kernel: int = 31  # the skipping stage's pooling, as in `fastv`

    def parts(self) -> tuple[FastV, SnapKV]:
        if self.skip_kernel < 1 or self.skip_kernel % 2 == 0:
            raise TokensieveError(f"{self.name}: skip_kernel must be odd >= 1, got {self.skip_kernel}")
        snapkv = SnapKV(budget=self.budget, allocation=self.allocation, evict_every=self.evict_every,
                        positions=self.positions, observe=self.observe, kernel=self.kernel)
        return self.fastv(self.skip_kernel), snapkv


@dataclass
class FastVHISA(SkipThen):
    """FastV (arXiv 2403.06764) token skipping, then HISA's block-sparse prefill and decode selection."""

    name = "fastv+hisa"
    stacks = (FastV, HISA)

    sparse_prefill: bool = True
    prefill_block: int = 64
    block: int = 16
    oversample: float = 4.0
    representative: str = "mean"
    kernel: int = 31  # the skipping stage's pooling, as in `fastv`
    skip_keep: float = 0.25

    def parts(self) -> tuple[FastV, HISA]:
        hisa = HISA(budget=self.budget, sparse_prefill=self.sparse_prefill, prefill_block=self.prefill_block,
                    block=self.block, oversample=self.oversample, representative=self.representative)
        return self.fastv(self.kernel), hisa


@dataclass
class HISAPrefill(HISA):
    """HISA with its block-sparse prefill on (`hisa --set sparse_prefill=true`), as one name the bench grid can
    run: sparse prefill attention alone, the baseline that token skipping is measured against."""

    name = "hisa_prefill"
    sweeps = False  # hisa with one option set

    sparse_prefill: bool = True
