"""A bench method string may name two precisions besides its policy: the KV storage after '@' and the weights after
'~'. "quest@int4" is quest over int4 codes, "full@int8" the whole cache as int8, "full~int8" the full cache on a
model with int8 weights (`tokensieve.weights`), "quest@int4~int8" both. Without them the cache is stored at full
precision and the weights are fp32, as every stored cell ran."""

from __future__ import annotations

from tokensieve.core.quant import check_kv_dtype
from tokensieve.weights import check_weights


def split_weights(method: str) -> tuple[str, str]:
    """(method without its weights, weights) of a method string; the weights are checked."""
    name, _, weights = method.partition("~")
    weights = weights or "fp32"
    check_weights(weights)
    return name, weights


def split_storage(method: str) -> tuple[str, str]:
    """(policy, kv_dtype) of a method string, whatever its weights; the kv_dtype is checked (one clear error for an
    unknown one)."""
    name, _, kv_dtype = split_weights(method)[0].partition("@")
    kv_dtype = kv_dtype or "fp"
    check_kv_dtype(kv_dtype)
    return name, kv_dtype
