"""The encoder methods, listed once, and `make`, which builds one by name."""

from __future__ import annotations

from tokensieve.encoder.base import EncoderMethod
from tokensieve.encoder.pitome import PiToMe
from tokensieve.encoder.pool_attention import PoolAttention
from tokensieve.encoder.random_prune import RandomPrune
from tokensieve.encoder.subword import SubwordMerge
from tokensieve.encoder.tome import ToMe
from tokensieve.encoder.zero_tprune import ZeroTPrune
from tokensieve.errors import TokensieveError

METHODS: dict[str, type[EncoderMethod]] = {
    m.name: m for m in (ToMe, PiToMe, ZeroTPrune, PoolAttention, SubwordMerge, RandomPrune)
}


def make(name: str, **options) -> EncoderMethod:
    if name not in METHODS:
        raise TokensieveError(f"unknown encoder method '{name}': choose from none, {', '.join(METHODS)}")
    try:
        return METHODS[name](**options)
    except TypeError as e:
        raise TokensieveError(f"encoder method '{name}': {e}") from None
