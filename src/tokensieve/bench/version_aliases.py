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
    # step and the tree verifier. Fourth: the KV storage precision axis (issue 28; kv_dtype "fp", the default,
    # stores exactly as before), SieveLayer moved to core/layer.py, and the bench's "policy@int4" method
    # strings (a new string is a new cell; every stored one keeps its key).
    # Fifth: the quantized layer's sinks and window as named constants, bench/storage.py among the shared modules.
    # Sixth: a quantized layer read on demand during a hooked forward (`gather`/`span`, `RowGather`), the
    # selectors' `pick_best`, `Session.layer` (every stored policy reads exactly the rows it read before: full@int4,
    # tokenselect@int4 and snapkv@int4 give identical tokens and bytes on SmolLM2 needles). Quest is not carried
    # over: its page bound is now computed as two products (equal up to float rounding), so its cells run again.
    # Seventh: `core.tensors.row_starts` caches the flat row offsets a gather computes (the same index, so the
    # same rows): every method keeps its version, quest the one its re-run cells carry.
    # Eighth: the weight-precision axis (issue 29): models.load, cached_load, run.setup and run.prefix take
    # `weights` ("fp32", the default, loads exactly as before) instead of an unused `dtype`, and the bench's
    # "policy~int8" method strings (a new string is a new cell; every stored one keeps its key).
    # Entries no current source produces are dropped.
    "023c19e87995": "139341e3ad8b",
    "14c5aae2949e": "3fb49f55a231",
    "1cf65892222d": "9dc3f8500857",
    "259ac18b49d3": "eb43e793047e",
    "2c60766aa51e": "9ccfc764c42d",
    "2ecefb4ce028": "7d00c49540bd",
    "3b7d0228f4bb": "5f09a713ea0c",
    "44c45a201ed4": "3aec48395932",
    "5adfedba47db": "8bc5195b2599",
    "62cdb7afb6c2": "1d1ab33f3697",
    "6f52de56f7fb": "f04c6678e619",
    "76b652d150e3": "faf97c48aaaf",
    "78e29fedf3b0": "8b72612fb813",
    "7e4b1abfeb3a": "a7ef7326283f",
    "7f588b0f6b80": "6ba223e03f94",
    "7f91c5f8906f": "a277a48626ac",
    "854b103bab80": "949b92e9daf0",
    "85a35cb99a80": "4ac35a5bfbfa",
    "8f19dbce0b61": "c752fef0148b",
    "92a942f75255": "4d61ad20cc0c",
    "974fb2260e76": "93113cf4c61a",
    "a2980699f5d1": "808f972afb1a",
    "b560877854a5": "5031dea118d1",
    "b64ae65f7aa5": "1ade962f3e7f",
    "cf0810919da4": "e994f3cca500",
    "eb416a9d760e": "e99aada68001",
    "ebff716474ec": "0e620232c6f1",
    "ecf71e32bd71": "9f46977b9b03",
    "ef975df6312f": "dcfc8bc26ab8",
    "f76ca1495ed7": "50c1d328b46c",
    "f87b0b6432b1": "deb8eb75246d",
    "fdd2c2809924": "49f70e27ebf3",
}
