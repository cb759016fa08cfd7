"""Every method tokensieve ships, listed once, and `make`, the one way to build one by name. The registry is this
table, not a side effect of importing the method modules; it sits above them, so no method imports it."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields

from tokensieve.core.budget import Budget
from tokensieve.core.policy import Policy
from tokensieve.core.registry import Registry
from tokensieve.errors import TokensieveError
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
from tokensieve.sparse.quest import Quest
from tokensieve.sparse.quest_paged import PagedQuest
from tokensieve.sparse.quest_vote import QuestVote
from tokensieve.sparse.rectified import Rectified
from tokensieve.sparse.tokenselect import TokenSelect

METHODS = (  # in the order listings and the bench's sweeps use
    Full,
    StreamingLLM,
    SnapKV,
    TOVA,
    KNorm,
    H2O,
    PyramidKV,
    Random,
    Window,
    TOVALayer,
    AutoKV,
    TokenSelect,
    FASA,
    IndexerTopK,
    HISA,
    Quest,
    QuestVote,
    PagedQuest,
    Rectified,
    Cluster,
    FastV,
    SPTS,
    GemFilter,
    FastVSnapKV,
    FastVHISA,
    HISAPrefill,
)

REGISTRY: Registry[type[Policy]] = Registry("policy", {cls.name: cls for cls in METHODS}, sort=True)  # tests add


def make(name: str, budget: Budget | float = 1.0, **options) -> Policy:
    """Build a registered policy by name; unknown names and options fail with one clear line. An option that
    names another policy (`Policy.composes`) is built here, with the same budget."""
    cls = REGISTRY.require(name)
    declared = {f.name: f for f in fields(cls)}
    unknown = set(options) - set(declared)
    if unknown:
        raise TokensieveError(f"policy '{name}' has no option {', '.join(sorted(unknown))}")
    if not isinstance(budget, Budget):
        budget = Budget(float(budget))
    for option, base in cls.composes.items():
        value = options.get(option, declared[option].default)
        if isinstance(value, str):
            options[option] = _composed(name, option, value, base, budget)
        elif value is MISSING:
            raise TokensieveError(f"policy '{name}' needs {option}=POLICY")
    return cls(budget=budget, **options)


def _composed(outer: str, option: str, inner: str, base: type[Policy], budget: Budget) -> Policy:
    """The policy an option names, if it is a `base` that composes nothing itself."""
    cls = REGISTRY.get(inner)
    if cls is None or not issubclass(cls, base) or cls.composes:
        choices = sorted(n for n, c in REGISTRY.items() if issubclass(c, base) and not c.composes)
        raise TokensieveError(f"{outer}: {option} '{inner}' is not a {base.kind}; choose from {', '.join(choices)}")
    return cls(budget=budget)


def parse_options(pairs: list[str]) -> dict:
    """['observe=64', 'sparse_prefill=true'] -> {'observe': 64, 'sparse_prefill': True} (JSON values, else str)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TokensieveError(f"option '{pair}' is not key=value")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options
