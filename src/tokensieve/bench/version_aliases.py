"""Code versions carried over behaviour-neutral refactors: the raw version after the refactor -> the version the
stored cells carry. Written by `python -m tokensieve.bench.versions alias BEFORE.json` (see docs/ADDING.md); an
entry is added only when the tests show the refactor changed no result."""

from __future__ import annotations

ALIASES: dict[str, str] = {
    # issue 30 (behaviour unchanged, every test passing): the registry moved to methods.py, the run loop from
    # generation.py to run/ and the model cache to models.py, evaluation modules into bench/, forwards pass
    # `cache=`, private names became public, and sources are hashed under their module names
    "040750ac37bf": "5f09a713ea0c",
    "07c6ee915106": "eb43e793047e",
    "14da5a168ac5": "3fb49f55a231",
    "1f3e78855ff2": "139341e3ad8b",
    "2695d11a5b76": "c752fef0148b",
    "2b0bc55548e1": "3aec48395932",
    "31be73f17b63": "dcfc8bc26ab8",
    "32498f247f40": "50c1d328b46c",
    "41eb3cef0f33": "6ba223e03f94",
    "4aa43ff83934": "4d61ad20cc0c",
    "52f1a3b70a6d": "0e620232c6f1",
    "57db0de2e1ca": "49f70e27ebf3",
    "5c791b749fa6": "a7ef7326283f",
    "67888a9682f6": "808f972afb1a",
    "67bb71988e29": "93113cf4c61a",
    "67f7096a8c6b": "9dc3f8500857",
    "6deef0c8a96b": "9ccfc764c42d",
    "87a3b9c40de9": "7d00c49540bd",
    "9130835d689f": "949b92e9daf0",
    "9a9935135421": "e994f3cca500",
    "9ab0b39ba8c8": "1ade962f3e7f",
    "9f91815e8def": "e99aada68001",
    "a5f94436a788": "9f46977b9b03",
    "b24ffbbab074": "f04c6678e619",
    "bd1de81bc997": "4ac35a5bfbfa",
    "ced75d6e2b08": "5031dea118d1",
    "d1d1f1cdb2c8": "b6aaa3498c23",
    "e6da86f2d21e": "faf97c48aaaf",
    "fa9b6ad8c14a": "1d1ab33f3697",
}
