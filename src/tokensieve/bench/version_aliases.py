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
    "0bba3f6c7dbe": "1ade962f3e7f",
    "0dcc7f660fa7": "808f972afb1a",
    "0eecf966af53": "139341e3ad8b",
    "0ef7edd0d012": "6ba223e03f94",
    "28ba6507a66e": "0e620232c6f1",
    "34723860c19d": "faf97c48aaaf",
    "3f0dde1c04de": "49f70e27ebf3",
    "481a0c6722a0": "9ccfc764c42d",
    "5686077ba360": "9dc3f8500857",
    "588948192cec": "5031dea118d1",
    "5bc6778a9f10": "c752fef0148b",
    "66d6aaae9405": "eb43e793047e",
    "6bc56189bcb0": "dcfc8bc26ab8",
    "7459f0e8a777": "4ac35a5bfbfa",
    "80f2392aec51": "f04c6678e619",
    "8675361aca65": "a277a48626ac",
    "ae9b3066131c": "5f09a713ea0c",
    "b0c67d8ab7aa": "1d1ab33f3697",
    "b6f31acfea7e": "7d00c49540bd",
    "bb97a39b9ee3": "3aec48395932",
    "bde6d414b3ea": "3fb49f55a231",
    "d83a131be075": "e994f3cca500",
    "dcabdb4b4597": "a7ef7326283f",
    "dd38bd5a5168": "949b92e9daf0",
    "de09efcdb33a": "93113cf4c61a",
    "e69e783ce52c": "4d61ad20cc0c",
    "e83544f7eea8": "e99aada68001",
    "ed3d5296c5cc": "50c1d328b46c",
    "f0a87a270c16": "9f46977b9b03",
}
