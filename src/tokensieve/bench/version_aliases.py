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
    # decode and encoder cells and every peer moved into bench/ (bench/peers/).
    # Entries no current source produces are dropped.
    "039eb50d8b84": "eb43e793047e",
    "091bac8f0c02": "50c1d328b46c",
    "0ed2a9d003f7": "49f70e27ebf3",
    "1298fd79af1b": "5031dea118d1",
    "13a739a07b55": "e994f3cca500",
    "20f396fcd6ab": "4d61ad20cc0c",
    "28bcb3944edb": "1d1ab33f3697",
    "2c0fd053087b": "1ade962f3e7f",
    "35662f17dd71": "93113cf4c61a",
    "3c4157dac02f": "4ac35a5bfbfa",
    "4c7fd228aecf": "f04c6678e619",
    "5faf4e4f31f8": "9ccfc764c42d",
    "656a37d5c764": "5f09a713ea0c",
    "69f31ce82df5": "7d00c49540bd",
    "72dc415fcac8": "949b92e9daf0",
    "78294f6a274a": "139341e3ad8b",
    "99e6a9ef8482": "3fb49f55a231",
    "a2c97e62b716": "6ba223e03f94",
    "b005b10e6281": "c752fef0148b",
    "c6e0c18f7969": "3aec48395932",
    "d87354a3d6db": "e99aada68001",
    "df8f54c70a95": "a277a48626ac",
    "e6a430dd03ee": "808f972afb1a",
    "ec768bde4fe2": "9dc3f8500857",
    "ecd91fc1b2ed": "a7ef7326283f",
    "ed39137148c9": "9f46977b9b03",
    "eda6f5d28489": "dcfc8bc26ab8",
    "f885cf180c7f": "0e620232c6f1",
    "fca534fc1644": "faf97c48aaaf",
}
