"""The encoder methods, listed once, and `make`, which builds one by name."""

from __future__ import annotations

from tokensieve.core.registry import Registry
from tokensieve.encoder.base import EncoderMethod
from tokensieve.encoder.pitome import PiToMe
from tokensieve.encoder.pool_attention import PoolAttention
from tokensieve.encoder.random_prune import RandomPrune
from tokensieve.encoder.subword import SubwordMerge
from tokensieve.encoder.tome import ToMe
from tokensieve.encoder.zero_tprune import ZeroTPrune
from tokensieve.errors import TokensieveError

METHODS: Registry[type[EncoderMethod]] = Registry(
    "encoder method", {m.name: m for m in (ToMe, PiToMe, ZeroTPrune, PoolAttention, SubwordMerge, RandomPrune)},
    builtin=("none",))


def make(name: str, **options) -> EncoderMethod:
    cls = METHODS.require(name)
    try:
        return cls(**options)
    except TypeError as e:
        raise TokensieveError(f"encoder method '{name}': {e}") from None
