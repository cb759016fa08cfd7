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
    # linears, opt-in: no stored cell ran with them).
    # Entries no current source produces are dropped.
    "12832c800525": "dcfc8bc26ab8",
    "1387eb200b06": "9dc3f8500857",
    "17ccb06efbe7": "139341e3ad8b",
    "21bd3e8e8df3": "c752fef0148b",
    "274b41220bb5": "50c1d328b46c",
    "29ddd5ec9409": "a7ef7326283f",
    "2d9a85ab2395": "949b92e9daf0",
    "362e2da46d80": "3aec48395932",
    "3d1b8bb26b6e": "faf97c48aaaf",
    "46caa146a553": "7d00c49540bd",
    "4807cfc7372c": "f04c6678e619",
    "508d18815d0a": "4ac35a5bfbfa",
    "5e9dfada0982": "e99aada68001",
    "5f2aeea9b5ee": "a277a48626ac",
    "6515c21009f1": "9ccfc764c42d",
    "692e4c803d8a": "3fb49f55a231",
    "7744b5f2a0d5": "808f972afb1a",
    "784df3465c59": "1ade962f3e7f",
    "81b8920e336c": "0e620232c6f1",
    "83409ba3e577": "6ba223e03f94",
    "9bf67beee6be": "49f70e27ebf3",
    "ba46b9c833db": "5031dea118d1",
    "c3bf81bced38": "93113cf4c61a",
    "c56109055132": "4d61ad20cc0c",
    "c69eef7f231d": "e994f3cca500",
    "c91c70116331": "5f09a713ea0c",
    "d1c88ac9c8f1": "1d1ab33f3697",
    "d965789653f2": "eb43e793047e",
    "f31904de3205": "9f46977b9b03",
}
