"""tokensieve: decide, token by token and without training, what a transformer keeps — and measure it."""

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

__all__ = [
    "REGISTRY", "Budget", "Compressed", "DecodeOptions", "KVPolicy", "Policy", "Result", "SieveCache", "Stats",
    "TokensieveError", "TreeDecoding", "apply", "compress", "generate", "load", "make", "merge", "parse_budget",
    "speculate",
]
