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
    # Entries no current source produces are dropped.
    "09cc788bf3c0": "0e620232c6f1",
    "0a767472f425": "1d1ab33f3697",
    "0b6a7afdff80": "4ac35a5bfbfa",
    "25a15e000920": "eb43e793047e",
    "3fc65b2a5cb6": "93113cf4c61a",
    "40bd5ee1acf2": "5031dea118d1",
    "46a592db5ebc": "dcfc8bc26ab8",
    "522dda54e35a": "f04c6678e619",
    "529eff4556ce": "deb8eb75246d",
    "6aca7d0bfd81": "9f46977b9b03",
    "725f5421d930": "50c1d328b46c",
    "7fcef0dfd71d": "6ba223e03f94",
    "8244babd18e1": "808f972afb1a",
    "8d4c1dd1baac": "49f70e27ebf3",
    "8e529dbcad47": "9dc3f8500857",
    "940fe89d8feb": "a7ef7326283f",
    "954cc0647a2f": "4d61ad20cc0c",
    "96d96b46b65d": "1ade962f3e7f",
    "97413c455f25": "faf97c48aaaf",
    "a28343606138": "c752fef0148b",
    "a3c9e40f2e68": "3aec48395932",
    "a839d6e0dba6": "949b92e9daf0",
    "bddbebe8d747": "3fb49f55a231",
    "cb88903eeda1": "5f09a713ea0c",
    "cbcc1f0860d5": "a277a48626ac",
    "cffece1e54dc": "139341e3ad8b",
    "d220f721ab4e": "e99aada68001",
    "ddcc8210e25f": "9ccfc764c42d",
    "e018d976e946": "e994f3cca500",
    "e298df55ca56": "7d00c49540bd",
    "ed011a613c7c": "8b72612fb813",
}
