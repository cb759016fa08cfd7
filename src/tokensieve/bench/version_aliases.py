"""Code versions carried over behaviour-neutral refactors: the raw version after the refactor -> the version the
stored cells carry. Written by `python -m tokensieve.bench.versions alias BEFORE.json` (see docs/ADDING.md); an
entry is added only when the tests show the refactor changed no result."""

from __future__ import annotations

ALIASES: dict[str, str] = {
    # issue 30: the registry moved to methods.py, evaluation modules moved into bench/, cycles broken, private
    # names made public, and versions hashed by module name instead of path
    "0a6941742b6c": "9dc3f8500857",
    "0ccf3abef647": "e994f3cca500",
    "0f1053ba3c23": "faf97c48aaaf",
    "0fd629678060": "f04c6678e619",
    "2334f75de6bd": "9ccfc764c42d",
    "248dfdb8577c": "5031dea118d1",
    "36dafce405ef": "808f972afb1a",
    "4546bebf845a": "1d1ab33f3697",
    "534390258efa": "9f46977b9b03",
    "58b97a383f63": "4d61ad20cc0c",
    "597e854f9e83": "50c1d328b46c",
    "604f52d0ead4": "3aec48395932",
    "6cd188d48279": "1ade962f3e7f",
    "773cadfe6e6d": "949b92e9daf0",
    "77bdf5c4da09": "139341e3ad8b",
    "7e70f88b6936": "49f70e27ebf3",
    "7f11efeb92f6": "6ba223e03f94",
    "7fd1c12162ec": "a7ef7326283f",
    "8a4b719bc27a": "c752fef0148b",
    "95f874010e98": "7d00c49540bd",
    "a2559194e22b": "0e620232c6f1",
    "c13aaf617076": "3fb49f55a231",
    "c8ef6f53a37d": "eb43e793047e",
    "dea0f9f960d4": "e99aada68001",
    "df5597b722d9": "b6aaa3498c23",
    "eb26ab9829da": "dcfc8bc26ab8",
    "fb1733d29335": "93113cf4c61a",
    "fb1891505f80": "5f09a713ea0c",
    "fcf924711ce6": "4ac35a5bfbfa",
}
