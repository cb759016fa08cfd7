"""Code versions carried over behaviour-neutral refactors: the raw version after the refactor -> the version the
stored cells carry. Written by `python -m tokensieve.bench.versions alias BEFORE.json` (see docs/ADDING.md); an
entry is added only when the tests show the refactor changed no result."""

from __future__ import annotations

ALIASES: dict[str, str] = {
    # issue 30 (behaviour unchanged, every test passing): the registry moved to methods.py, the run loop from
    # generation.py to run/ and the model cache to models.py, evaluation modules into bench/, policies declare
    # their capabilities, forwards pass `cache=`, private names became public, and sources are hashed under
    # their module names. Not `auto`: it now branches from a shared prefix when its scorer can (no stored cells)
    "066ffa6262fd": "9ccfc764c42d",
    "08da760db531": "faf97c48aaaf",
    "14f00d1d659f": "a7ef7326283f",
    "166613176916": "f04c6678e619",
    "1f7c33917183": "50c1d328b46c",
    "207443fd2585": "808f972afb1a",
    "235402ae1964": "5031dea118d1",
    "2eb64aac4d47": "0e620232c6f1",
    "4525f8e72666": "5f09a713ea0c",
    "470b12b06804": "7d00c49540bd",
    "518fc57f13c5": "e99aada68001",
    "61d6406d334b": "4d61ad20cc0c",
    "69571c3bbb6f": "6ba223e03f94",
    "7261e33577e7": "c752fef0148b",
    "77bc7c4bb902": "3aec48395932",
    "852ded64694f": "1d1ab33f3697",
    "90ab6b319693": "1ade962f3e7f",
    "a5d407b6f780": "4ac35a5bfbfa",
    "abfed68da39d": "49f70e27ebf3",
    "c2493027cfc8": "139341e3ad8b",
    "ce1c1ddb3fdf": "93113cf4c61a",
    "d5a9659a7ea7": "3fb49f55a231",
    "d95c4273e51e": "9f46977b9b03",
    "e843a69f5030": "eb43e793047e",
    "e88aee394efc": "949b92e9daf0",
    "ec00fb31fe9f": "e994f3cca500",
    "f40bf97f783a": "dcfc8bc26ab8",
    "fd1190bb43b0": "9dc3f8500857",
}
