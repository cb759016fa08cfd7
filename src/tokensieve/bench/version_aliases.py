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
    "10105df9bebd": "7d00c49540bd",
    "10ef31fda02f": "3aec48395932",
    "15172311efb8": "139341e3ad8b",
    "1e9cc3c1fa5e": "e99aada68001",
    "2665f4ee6bb5": "3fb49f55a231",
    "443a0289dd3b": "9dc3f8500857",
    "4fa17136860a": "4ac35a5bfbfa",
    "506c97814ab8": "50c1d328b46c",
    "53bf54f07112": "dcfc8bc26ab8",
    "545ecb2be730": "1d1ab33f3697",
    "5b0e71c1fa7e": "9f46977b9b03",
    "5ddad0b32dce": "949b92e9daf0",
    "5dfa7007ca22": "808f972afb1a",
    "634fdcd8ed78": "6ba223e03f94",
    "6dbf4b37b2ce": "a277a48626ac",
    "7d02449441d7": "5031dea118d1",
    "8cf54d01a98d": "5f09a713ea0c",
    "8f3b2c0724a6": "faf97c48aaaf",
    "8ff41e88567e": "1ade962f3e7f",
    "93ef8346f7db": "f04c6678e619",
    "b4e180112620": "a7ef7326283f",
    "bc9477b4ad02": "0e620232c6f1",
    "c16babe21374": "4d61ad20cc0c",
    "ccbffee30e24": "49f70e27ebf3",
    "d01f1f10f374": "eb43e793047e",
    "da12c12acadf": "9ccfc764c42d",
    "df54dfa738c0": "c752fef0148b",
    "f733cead01d8": "93113cf4c61a",
    "f7cf70c1d43d": "e994f3cca500",
}
