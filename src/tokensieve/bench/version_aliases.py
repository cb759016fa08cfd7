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
    # step and the tree verifier.
    # Entries no current source produces are dropped.
    "0b75641471ec": "49f70e27ebf3",
    "0e925c4089c3": "949b92e9daf0",
    "23419f4f1447": "5031dea118d1",
    "28d416430118": "6ba223e03f94",
    "3083dd6c6d24": "eb43e793047e",
    "368614a53cf8": "3aec48395932",
    "3d393762b2a5": "f04c6678e619",
    "4102b9ced021": "5f09a713ea0c",
    "4d3f88a6eee5": "e99aada68001",
    "4edc72923af1": "9ccfc764c42d",
    "5bb12cb953f0": "4d61ad20cc0c",
    "5c17d99fead0": "93113cf4c61a",
    "61256ebc56bf": "9f46977b9b03",
    "6c3baa8c0955": "0e620232c6f1",
    "73905c35b3f5": "a277a48626ac",
    "89dc1449a503": "faf97c48aaaf",
    "94510a7c586b": "a7ef7326283f",
    "9883050a718a": "808f972afb1a",
    "9bc1ce6acee2": "1ade962f3e7f",
    "9f7248385d86": "e994f3cca500",
    "ab4057707aeb": "50c1d328b46c",
    "b05a487f62d1": "dcfc8bc26ab8",
    "b5bf212d47ae": "139341e3ad8b",
    "ca785b4facfe": "7d00c49540bd",
    "d2e9defeffe9": "c752fef0148b",
    "d6dfc2c1f57d": "4ac35a5bfbfa",
    "e5b228cd590f": "1d1ab33f3697",
    "edf44f71527f": "3fb49f55a231",
    "f178dc594869": "9dc3f8500857",
}
