"""tokensieve: decide, token by token and without training, what a transformer keeps — and measure it.

The public names load on first use (PEP 562), so `import tokensieve.core.select` stays light: the vLLM plugin
runs in vLLM's own venv, which lacks tokensieve's heavier dependencies."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "Budget": "tokensieve.core.budget", "parse_budget": "tokensieve.core.budget",
    "SieveCache": "tokensieve.core.cache", "apply": "tokensieve.core.hooks",
    "KVPolicy": "tokensieve.core.policy", "Policy": "tokensieve.core.policy",
    "TreeDecoding": "tokensieve.decode.hf", "DecodeOptions": "tokensieve.decode.loop",
    "speculate": "tokensieve.decode.loop", "merge": "tokensieve.encoder", "TokensieveError": "tokensieve.errors",
    "REGISTRY": "tokensieve.methods", "make": "tokensieve.methods", "load": "tokensieve.models",
    "Compressed": "tokensieve.prompt", "compress": "tokensieve.prompt", "Result": "tokensieve.run",
    "Stats": "tokensieve.run", "generate": "tokensieve.run",
}

__all__ = [
    "REGISTRY", "Budget", "Compressed", "DecodeOptions", "KVPolicy", "Policy", "Result", "SieveCache", "Stats",
    "TokensieveError", "TreeDecoding", "apply", "compress", "generate", "load", "make", "merge", "parse_budget",
    "speculate",
]

if TYPE_CHECKING:
    from tokensieve.core.budget import Budget, parse_budget
    from tokensieve.core.cache import SieveCache
    from tokensieve.core.hooks import apply
    from tokensieve.core.policy import KVPolicy, Policy
    from tokensieve.decode.hf import TreeDecoding
    from tokensieve.decode.loop import DecodeOptions, speculate
    from tokensieve.encoder import merge
    from tokensieve.errors import TokensieveError
    from tokensieve.methods import REGISTRY, make
    from tokensieve.models import load
    from tokensieve.prompt import Compressed, compress
    from tokensieve.run import Result, Stats, generate


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'tokensieve' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
