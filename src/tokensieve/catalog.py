"""The single table of everything tokensieve builds by name, one `Registry` per kind of method. Each package keeps
its own registry (so imports keep pointing down); this module, above them all, gathers them for listings and for
the bench's suites."""

from __future__ import annotations

from tokensieve.core.policy import DynamicPolicy, KVPolicy
from tokensieve.core.registry import Registry
from tokensieve.decode.loop import DRAFTERS
from tokensieve.encoder.methods import METHODS as ENCODER_METHODS
from tokensieve.methods import REGISTRY as POLICIES
from tokensieve.prompt.api import COMPRESSORS

CATALOG: dict[str, Registry] = {"policy": POLICIES, "encoder method": ENCODER_METHODS,
                                "compression method": COMPRESSORS, "decoder": DRAFTERS}


def kv_policies() -> tuple[str, ...]:
    """The KV policies a sweep runs: every one that evicts by itself (not a token skipper, not a combination) and
    does not opt out (`Policy.sweeps`), in the registry's order."""
    return tuple(name for name, cls in POLICIES.items()
                 if issubclass(cls, KVPolicy) and not cls.skips_tokens and not cls.composes and cls.sweeps)


def selectors() -> tuple[str, ...]:
    """The dynamic selectors (attention over a chosen subset of a whole cache), in the registry's order."""
    return tuple(name for name, cls in POLICIES.items()
                 if issubclass(cls, DynamicPolicy) and not cls.skips_tokens and cls.sweeps)
