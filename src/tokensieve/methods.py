"""Every method tokensieve ships, listed once. The policy registry is this table (read on first use by
`tokensieve.core.policy.REGISTRY`), not a side effect of importing the method modules."""

from __future__ import annotations

from tokensieve.kv.auto import AutoKV
from tokensieve.kv.full import Full
from tokensieve.kv.h2o import H2O
from tokensieve.kv.knorm import KNorm
from tokensieve.kv.pyramid import PyramidKV
from tokensieve.kv.random import Random
from tokensieve.kv.snapkv import SnapKV
from tokensieve.kv.streaming_llm import StreamingLLM
from tokensieve.kv.tova import TOVA
from tokensieve.kv.tova_layer import TOVALayer
from tokensieve.kv.window import Window
from tokensieve.prefill.combos import FastVHISA, FastVSnapKV, HISAPrefill
from tokensieve.prefill.fastv import FastV
from tokensieve.prefill.gemfilter import GemFilter
from tokensieve.prefill.spts import SPTS
from tokensieve.sparse.cluster import Cluster
from tokensieve.sparse.fasa import FASA
from tokensieve.sparse.hisa import HISA
from tokensieve.sparse.indexer import IndexerTopK
from tokensieve.sparse.rectified import Rectified
from tokensieve.sparse.tokenselect import TokenSelect

METHODS = (
    Full,
    Window,
    StreamingLLM,
    H2O,
    SnapKV,
    TOVA,
    TOVALayer,
    KNorm,
    Random,
    PyramidKV,
    AutoKV,
    TokenSelect,
    FASA,
    IndexerTopK,
    HISA,
    Rectified,
    Cluster,
    FastV,
    SPTS,
    GemFilter,
    FastVSnapKV,
    FastVHISA,
    HISAPrefill,
)
