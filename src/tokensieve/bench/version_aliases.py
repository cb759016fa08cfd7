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
    # Entries no current source produces are dropped.
    "21d8d719fdc5": "50c1d328b46c",
    "3c7248953e13": "a7ef7326283f",
    "3e3a2b2bd688": "e99aada68001",
    "3f9fbe79e399": "6ba223e03f94",
    "5df4e99ed223": "93113cf4c61a",
    "642db3add1bf": "dcfc8bc26ab8",
    "66c21e6f6763": "c752fef0148b",
    "6a96669807a2": "7d00c49540bd",
    "6b0ea6b7adee": "1ade962f3e7f",
    "6c0110f76cf5": "a277a48626ac",
    "750d6fed7180": "0e620232c6f1",
    "77f77535300d": "3fb49f55a231",
    "88c5ead91624": "1d1ab33f3697",
    "89025a734196": "f04c6678e619",
    "8b965e812d76": "5031dea118d1",
    "8cbc445d4110": "9ccfc764c42d",
    "8e4f44749230": "49f70e27ebf3",
    "924ae2c3572c": "4ac35a5bfbfa",
    "948f00c47f0b": "139341e3ad8b",
    "9d00d105058d": "808f972afb1a",
    "c48467317b61": "9dc3f8500857",
    "c74961384bd3": "3aec48395932",
    "d084a0ac33fa": "4d61ad20cc0c",
    "d89884215c4b": "e994f3cca500",
    "da79f5de07e2": "9f46977b9b03",
    "e2bf7533bffd": "faf97c48aaaf",
    "f053c0b7ecd4": "949b92e9daf0",
    "f532f4d3c621": "5f09a713ea0c",
    "fddc9d89eb1a": "eb43e793047e",
}
