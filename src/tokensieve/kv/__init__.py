"""KV-cache policies: one file per paper, each only the scorer that is new in it."""

from tokensieve.kv import (  # noqa: F401  (importing registers them)
    auto,
    full,
    h2o,
    knorm,
    pyramid,
    random,
    snapkv,
    streaming_llm,
    tova,
    window,
)
