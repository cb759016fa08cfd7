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
    "07847ad74975": "a7ef7326283f",
    "0a7cb907ae68": "1d1ab33f3697",
    "142def170fb3": "50c1d328b46c",
    "15da1951e60d": "7d00c49540bd",
    "1ce7da075f32": "808f972afb1a",
    "224b92fd0b56": "5f09a713ea0c",
    "50b7bb49805a": "93113cf4c61a",
    "50d700ed0757": "9dc3f8500857",
    "64115b1748a5": "1ade962f3e7f",
    "67c84b3434ad": "5031dea118d1",
    "72a3e2a61c50": "a277a48626ac",
    "7695e6e5eb75": "f04c6678e619",
    "7e0f889e9dc1": "3fb49f55a231",
    "801271984037": "e994f3cca500",
    "85b8412a9453": "139341e3ad8b",
    "891562682e76": "4ac35a5bfbfa",
    "997d756c5361": "6ba223e03f94",
    "99b16ad78317": "9ccfc764c42d",
    "9dca3ba9640a": "0e620232c6f1",
    "a9ddcf665a95": "4d61ad20cc0c",
    "acfc9ae5a3d1": "dcfc8bc26ab8",
    "b98be85f21c3": "49f70e27ebf3",
    "c2e044c894f5": "949b92e9daf0",
    "ca4a3258c2ab": "faf97c48aaaf",
    "cfef4d5ce77a": "eb43e793047e",
    "daebb4fdf070": "3aec48395932",
    "e6eb034adb78": "e99aada68001",
    "e9fed647d651": "9f46977b9b03",
    "eb0d7eee6f2e": "c752fef0148b",
}
