"""Code versions carried over behaviour-neutral refactors: the raw version after the refactor -> the version the
stored cells carry. Written by `python -m tokensieve.bench.versions alias BEFORE.json` (see docs/ADDING.md); an
entry is added only when the tests show the refactor changed no result."""

from __future__ import annotations

ALIASES: dict[str, str] = {
    # issue 30 (behaviour unchanged, every test passing), in two steps. First: the registry moved to methods.py,
    # the run loop from generation.py to run/ and the model cache to models.py, evaluation modules into bench/,
    # policies declare their capabilities, forwards pass `cache=`, private names became public, and sources are
    # hashed under their module names (not `auto`: it now branches from a shared prefix when its scorer can; it had
    # no stored cells). Second: one Registry type for every kind of method, SieveLayer's truncate / rollback /
    # skip_next, Session's override / evict_now / hooks, one attention-implementation switch, `sweeps` flags; the
    # decode and encoder cells and every peer moved into bench/ (bench/peers/); core/gemm.py added (prepacked
    # linears, opt-in: no stored cell ran with them). Third: combinations by composition (`Stacked`: fastv+snapkv
    # and fastv+hisa are a FastV part and a SnapKV or HISA part, asked for by `skipper()`, `evictor()` and
    # `attender()`; both give identical tokens and stats before and after on a SmolLM2 needle), `Session.open`,
    # `run.setup` shared by generate and speculate, and one decode-time eviction (`Session.decoded`) for the greedy
    # step and the tree verifier. Fourth: the KV storage precision axis (issue 28; kv_dtype "fp", the default,
    # stores exactly as before), SieveLayer moved to core/layer.py, and the bench's "policy@int4" method
    # strings (a new string is a new cell; every stored one keeps its key).
    # Fifth: the quantized layer's sinks and window as named constants, bench/storage.py among the shared modules.
    # Sixth: a quantized layer read on demand during a hooked forward (`gather`/`span`, `RowGather`), the
    # selectors' `pick_best`, `Session.layer` (every stored policy reads exactly the rows it read before: full@int4,
    # tokenselect@int4 and snapkv@int4 give identical tokens and bytes on SmolLM2 needles). Quest is not carried
    # over: its page bound is now computed as two products (equal up to float rounding), so its cells run again.
    # Entries no current source produces are dropped.
    "067d3eba52cf": "3fb49f55a231",
    "0e6020849342": "4ac35a5bfbfa",
    "18d14d4dd399": "6ba223e03f94",
    "1eeb9cdc8b54": "5f09a713ea0c",
    "26e69eb72497": "50c1d328b46c",
    "2d918eb70a24": "9f46977b9b03",
    "2dc4e659be48": "5031dea118d1",
    "3228bab33fee": "faf97c48aaaf",
    "3529857d67fc": "dcfc8bc26ab8",
    "3b03fb6d2eee": "7d00c49540bd",
    "3b7a56400820": "139341e3ad8b",
    "3d834e39041e": "1d1ab33f3697",
    "3e8a5eddcaa6": "4d61ad20cc0c",
    "4669cd383edc": "0e620232c6f1",
    "568f22f6ddfa": "c752fef0148b",
    "64d2dd56de88": "e99aada68001",
    "6c5647ea9f0b": "f04c6678e619",
    "7488df5a6c59": "949b92e9daf0",
    "76979a65a781": "a7ef7326283f",
    "822d7b324e2a": "93113cf4c61a",
    "84483ca1f25e": "808f972afb1a",
    "977c4531ab35": "eb43e793047e",
    "a4f84f35ec79": "e994f3cca500",
    "ae63b95275a4": "49f70e27ebf3",
    "b458135cfa4d": "9dc3f8500857",
    "c9da36b43711": "1ade962f3e7f",
    "d30b8a1af218": "a277a48626ac",
    "d4ed3e693f91": "3aec48395932",
    "ea3887770455": "9ccfc764c42d",
}
