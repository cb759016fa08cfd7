"""Token skipping composed with a second method on the tokens that remain (issue: do they compose?).

`fastv+snapkv`: FastV's stage in every prompt forward, then SnapKV evicts each layer's cache to its budget; with
`--chunk` this is chunked prefill with eviction, where each chunk's own last tokens score it. `fastv+hisa`:
HISA's block-sparse attention for prompt queries in every layer (64-token blocks), FastV's stage at half the
depth, and HISA's selection at decode: sparse attention saves most in the layers before the stage, which carry
every token. In both, `budget` is the
second method's and `skip_keep` the share of each prompt forward carried past the stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokensieve.errors import TokensieveError
from tokensieve.kv.snapkv import SnapKV
from tokensieve.prefill.fastv import FastV
from tokensieve.prefill.skip import Stage, layer_index
from tokensieve.sparse.hisa import HISA


@dataclass
class _SkipKeep:
    skip_keep: float = 0.5

    def stages(self, n_layers: int) -> list[Stage]:
        if not 0 < self.skip_keep <= 1:
            raise TokensieveError(f"skip_keep must be in (0, 1], got {self.skip_keep}")
        first = layer_index(self.layer, n_layers)
        return [Stage(probe=first - 1, layer=first, keep=self.skip_keep)]


@dataclass
class FastVSnapKV(_SkipKeep, FastV, SnapKV):
    """FastV (arXiv 2403.06764) token skipping, then SnapKV (arXiv 2404.14469) eviction of each layer's cache."""

    name = "fastv+snapkv"

    kernel: int = 7  # SnapKV's own pooling, as in `snapkv`
    skip_kernel: int = 31  # the skipping stage's pooling, as in `fastv`

    def pool_kernel(self) -> int:
        return self.skip_kernel

    def __post_init__(self) -> None:
        SnapKV.__post_init__(self)
        FastV.__post_init__(self)
        if self.skip_kernel < 1 or self.skip_kernel % 2 == 0:
            raise TokensieveError(f"{self.name}: skip_kernel must be odd >= 1, got {self.skip_kernel}")

    def attend(self, session, module, query, key, value, attention_mask, **kwargs):
        return session.dense(module, query, key, value, attention_mask, **kwargs)  # decode counted on eviction


@dataclass
class FastVHISA(_SkipKeep, FastV, HISA):
    """FastV (arXiv 2403.06764) token skipping, then HISA's block-sparse prefill and decode selection."""

    name = "fastv+hisa"

    sparse_prefill: bool = True
    prefill_block: int = 64
    skip_keep: float = 0.25

    attend = HISA.attend


@dataclass
class HISAPrefill(HISA):
    """HISA with its block-sparse prefill on (`hisa --set sparse_prefill=true`), as one name the bench grid can
    run: sparse prefill attention alone, the baseline that token skipping is measured against."""

    name = "hisa_prefill"
    sweeps = False  # hisa with one option set

    sparse_prefill: bool = True
