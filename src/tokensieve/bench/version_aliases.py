"""Code versions carried over behaviour-neutral refactors: the raw version after the refactor -> the version the
stored cells carry. Written by `python -m tokensieve.bench.versions alias BEFORE.json` (see docs/ADDING.md); an
entry is added only when the tests show the refactor changed no result."""

from __future__ import annotations

ALIASES: dict[str, str] = {
    # issue 30 (behaviour unchanged, every test passing): the registry moved to methods.py, the run loop from
    # generation.py to run/ and the model cache to models.py, evaluation modules into bench/, policies declare
    # their capabilities, forwards pass `cache=`, private names became public, and sources are hashed under
    # their module names. Not `auto`: it now branches from a shared prefix when its scorer can (no stored cells)
    "0d138af5a769": "93113cf4c61a",
    "11b2ceba2734": "eb43e793047e",
    "1f934c117318": "9f46977b9b03",
    "21b343e72321": "5031dea118d1",
    "285c639f2727": "9dc3f8500857",
    "328044028701": "5f09a713ea0c",
    "4865d7b3caae": "e99aada68001",
    "564f88e93911": "1d1ab33f3697",
    "64cb19bb30c8": "3fb49f55a231",
    "6c9bd4e0d8c7": "9ccfc764c42d",
    "751a2bf258f8": "808f972afb1a",
    "7bc604f42bd6": "50c1d328b46c",
    "8212267eaf02": "f04c6678e619",
    "84c62e461d79": "c752fef0148b",
    "8b6a012f7f30": "4ac35a5bfbfa",
    "969de7181a7b": "e994f3cca500",
    "970ae7562fa8": "dcfc8bc26ab8",
    "ab086181395b": "4d61ad20cc0c",
    "afcbc2000633": "949b92e9daf0",
    "ba01efcd5ba6": "3aec48395932",
    "bab6d95ff54b": "0e620232c6f1",
    "d0af15c13738": "faf97c48aaaf",
    "da9e034f4c69": "1ade962f3e7f",
    "db345142435b": "7d00c49540bd",
    "df1d72a8bbb1": "139341e3ad8b",
    "e280ae50056f": "49f70e27ebf3",
    "e97031715f28": "6ba223e03f94",
    "ec6f822f2081": "a7ef7326283f",
}
