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
    # `attender()`; fastv+hisa's 12 prefill cells give identical tokens and stats before and after), `Session.open`,
    # and `run.setup` shared by generate and speculate.
    # Entries no current source produces are dropped.
    "079255faae40": "6ba223e03f94",
    "0dd01de8a70b": "e99aada68001",
    "15d5938daee7": "f04c6678e619",
    "2681c94c8701": "7d00c49540bd",
    "2b3e75c60ce3": "808f972afb1a",
    "30bd1122e5b6": "949b92e9daf0",
    "349940f1c2c1": "93113cf4c61a",
    "3b1d48ed5bf0": "4ac35a5bfbfa",
    "4fd8e72e10a2": "5031dea118d1",
    "5191a33a12c2": "a277a48626ac",
    "570f9fe4d7be": "c752fef0148b",
    "57a205607e4d": "a7ef7326283f",
    "5be380dc3202": "3fb49f55a231",
    "69f785c5fa33": "1ade962f3e7f",
    "71562e8e8f7a": "dcfc8bc26ab8",
    "8a0fbf8e6547": "5f09a713ea0c",
    "8c2bc9c3be0c": "e994f3cca500",
    "92addbb08e79": "50c1d328b46c",
    "97508f526902": "49f70e27ebf3",
    "9c4ebea9bcb9": "0e620232c6f1",
    "9ee9397ca1ca": "139341e3ad8b",
    "a103ac16ab83": "9dc3f8500857",
    "a4b21417c8f9": "9f46977b9b03",
    "b9924c825f79": "eb43e793047e",
    "bad1b690dac1": "9ccfc764c42d",
    "d4c9439933dc": "4d61ad20cc0c",
    "da889c3c6e19": "1d1ab33f3697",
    "e62461513484": "faf97c48aaaf",
    "feae93925a50": "3aec48395932",
}
