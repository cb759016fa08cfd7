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
    "00d346c91bf7": "e994f3cca500",
    "05b69436d994": "1ade962f3e7f",
    "0ab67004e425": "49f70e27ebf3",
    "19deaca2daa9": "deb8eb75246d",
    "27a73b4bfb64": "50c1d328b46c",
    "2ddd97d6123f": "4d61ad20cc0c",
    "3f4fe8f112e5": "5031dea118d1",
    "452a21166d61": "0e620232c6f1",
    "495078de25bd": "93113cf4c61a",
    "532d4a3e0c77": "3aec48395932",
    "63874750efe6": "8bc5195b2599",
    "66cd5577e1e3": "3fb49f55a231",
    "6c02f20674c6": "dcfc8bc26ab8",
    "8125fef13bf3": "4ac35a5bfbfa",
    "863ca5a7537e": "808f972afb1a",
    "8cf5cc6c9a0d": "6ba223e03f94",
    "92f8fe01ab6f": "eb43e793047e",
    "993447d14eed": "139341e3ad8b",
    "9a02b472caf8": "9f46977b9b03",
    "9b3128931a0a": "7d00c49540bd",
    "a3b5fcad55a0": "c752fef0148b",
    "a6b205da53a9": "1d1ab33f3697",
    "a6e2c5d07f90": "a7ef7326283f",
    "b3e41b268084": "9ccfc764c42d",
    "b8509c64d5d4": "e99aada68001",
    "c20e02404324": "f04c6678e619",
    "c3fcecd31356": "a277a48626ac",
    "c9f7ff65faae": "faf97c48aaaf",
    "cee40280f9d2": "5f09a713ea0c",
    "d0faaae8dc11": "949b92e9daf0",
    "d7d38e6a58b2": "9dc3f8500857",
    "e50f5cdee7f7": "8b72612fb813",
}
