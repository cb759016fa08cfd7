"""Code versions carried over behaviour-neutral refactors: the raw version after the refactor -> the version the
stored cells carry. Written by `python -m tokensieve.bench.versions alias BEFORE.json` (see docs/ADDING.md); an
entry is added only when the tests show the refactor changed no result."""

from __future__ import annotations

ALIASES: dict[str, str] = {
    # issue 30 (behaviour unchanged, every test passing): the registry moved to methods.py, the run loop from
    # generation.py to run/ and the model cache to models.py, evaluation modules into bench/, policies declare
    # their capabilities, forwards pass `cache=`, private names became public, and sources are hashed under
    # their module names. Not `auto`: it now branches from a shared prefix when its scorer can (no stored cells)
    "01149571db8c": "a7ef7326283f",
    "026cde6e066a": "f04c6678e619",
    "19707b1eb439": "9ccfc764c42d",
    "23f3450e56c4": "e99aada68001",
    "258cdd5a1228": "e994f3cca500",
    "38a067e26757": "3aec48395932",
    "410007a8ca90": "7d00c49540bd",
    "460db29ca003": "faf97c48aaaf",
    "4edb4702cfce": "9dc3f8500857",
    "4f14f40e075e": "1ade962f3e7f",
    "6b4655ed6e7c": "49f70e27ebf3",
    "7533f03654aa": "5f09a713ea0c",
    "8cea021b8300": "949b92e9daf0",
    "990ccb65f8dc": "50c1d328b46c",
    "a205302b1ac1": "4ac35a5bfbfa",
    "a5f161b26ee1": "1d1ab33f3697",
    "bfd717f2e8ba": "c752fef0148b",
    "c573503d87f4": "3fb49f55a231",
    "da8003853401": "9f46977b9b03",
    "de9b7fb89c64": "5031dea118d1",
    "e19fb267c982": "0e620232c6f1",
    "e3ef027183d6": "93113cf4c61a",
    "e4cbd538d585": "4d61ad20cc0c",
    "ea3c6a04c724": "6ba223e03f94",
    "ebe3146698b6": "139341e3ad8b",
    "f940c83d2fd8": "808f972afb1a",
    "f9bdb0a08217": "dcfc8bc26ab8",
    "f9bfd373b176": "eb43e793047e",
}
