"""Encoder token reduction (stage: encoder layers): merge or prune rows between the layers of a BERT-family or
ViT encoder, training-free. `merge(model, "tome", keep=0.5)` around a transformers model or a
SentenceTransformer; `tokensieve encode` on the command line; `tokensieve bench --suite encoder` measures."""

from __future__ import annotations

from tokensieve.encoder.base import EncoderMethod
from tokensieve.encoder.pitome import PiToMe
from tokensieve.encoder.pool_attention import PoolAttention
from tokensieve.encoder.random_prune import RandomPrune
from tokensieve.encoder.schedule import Schedule
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


from tokensieve.encoder.run import EncoderRun, merge  # noqa: E402  (run imports make from here)

__all__ = ["METHODS", "EncoderMethod", "EncoderRun", "Schedule", "make", "merge"]
