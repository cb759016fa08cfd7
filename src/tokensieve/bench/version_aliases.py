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
    # Ninth: the CPU decode kernel (issue 29), opt-in through `apply(decode_kernel=)` and the engine; off, the
    # model's own attention runs exactly as before (`with_kernel` returns it unchanged). A quantized store's
    # selected rows (sinks, codes and newest rows) are read by a compiled loop where it builds, bit-identical to
    # the torch path (tests/test_dequantize_kernel.py, tests/test_kv_dtype.py).
    # Entries no current source produces are dropped.
    "0b0ad7512802": "4d61ad20cc0c",
    "0b9da41a017d": "1d1ab33f3697",
    "0e9c232eb269": "9f46977b9b03",
    "114e2f84f130": "8b72612fb813",
    "13abc697f507": "49f70e27ebf3",
    "14fc970166ae": "3aec48395932",
    "2ae23c3f88ad": "808f972afb1a",
    "3283c9b78cfb": "6ba223e03f94",
    "456f939475f1": "e99aada68001",
    "4d5310b01aa0": "9dc3f8500857",
    "570fcac49879": "949b92e9daf0",
    "5fba5e322d46": "50c1d328b46c",
    "60530841046d": "8bc5195b2599",
    "63757fc764c1": "4ac35a5bfbfa",
    "7d7d38256c43": "9ccfc764c42d",
    "8013ab1f0c58": "5031dea118d1",
    "80977f6a7896": "dcfc8bc26ab8",
    "8281a113c862": "3fb49f55a231",
    "936594c3c50a": "c752fef0148b",
    "982782c8d1c8": "faf97c48aaaf",
    "a1fd65491e53": "e994f3cca500",
    "a53c92df5b1f": "1ade962f3e7f",
    "a6534470ec06": "a7ef7326283f",
    "bb6298de8f53": "5f09a713ea0c",
    "c2e90a5d939e": "7d00c49540bd",
    "c759c0d974f2": "139341e3ad8b",
    "cce9e64b9a87": "0e620232c6f1",
    "d5d0d1505fe7": "f04c6678e619",
    "d7d16bcbbcdc": "93113cf4c61a",
    "e862a9883fdc": "deb8eb75246d",
    "e9e82a323185": "a277a48626ac",
    "ea43514f97a9": "eb43e793047e",
}
