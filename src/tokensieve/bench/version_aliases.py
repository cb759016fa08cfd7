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
    # Entries no current source produces are dropped.
    "0240ea48492e": "949b92e9daf0",
    "046fc254f943": "5031dea118d1",
    "0a64993665f2": "808f972afb1a",
    "152be18ad28d": "a7ef7326283f",
    "20c28acc8661": "5f09a713ea0c",
    "3442ea002d43": "9ccfc764c42d",
    "3b6ad59a7997": "7d00c49540bd",
    "52ec8a9470ef": "3fb49f55a231",
    "5c02c88687c5": "93113cf4c61a",
    "64c7a25863be": "f04c6678e619",
    "733ae9a9a2a5": "4d61ad20cc0c",
    "78bbf854eef6": "9d3c3dd75758",
    "7ea0041db800": "e994f3cca500",
    "7ef3d2a31471": "e99aada68001",
    "8261a62789bb": "0e620232c6f1",
    "8b76fd4c89d1": "49f70e27ebf3",
    "8e3e60de16ee": "50c1d328b46c",
    "8f2e82eea25b": "9f46977b9b03",
    "9f8b80cd8380": "4ac35a5bfbfa",
    "a722d3b2e036": "eb43e793047e",
    "b8abceb8c028": "6ba223e03f94",
    "bdd3a7783564": "9dc3f8500857",
    "c70b13611a92": "1ade962f3e7f",
    "c75da7699448": "139341e3ad8b",
    "d3902c3dfcdb": "c752fef0148b",
    "d608a48919e8": "1d1ab33f3697",
    "da63cfd4621a": "a277a48626ac",
    "e0c30e7fa9ff": "3aec48395932",
    "e957adefa6f1": "dcfc8bc26ab8",
    "f0b65a9dcde4": "faf97c48aaaf",
}
