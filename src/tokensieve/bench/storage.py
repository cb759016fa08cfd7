"""A bench method string may name a KV storage precision after '@': "quest@int4" is quest over int4 codes,
"full@int8" the whole cache as int8. Without it the cache is stored at full precision, as every stored cell was."""

from __future__ import annotations

from tokensieve.core.quant import check_kv_dtype


def split_storage(method: str) -> tuple[str, str]:
    """(policy, kv_dtype) of a method string; the kv_dtype is checked (one clear error for an unknown one)."""
    name, _, kv_dtype = method.partition("@")
    kv_dtype = kv_dtype or "fp"
    check_kv_dtype(kv_dtype)
    return name, kv_dtype
