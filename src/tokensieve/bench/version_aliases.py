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
    # Tenth: `generate --decode-kernel` (issue 29): run.set_up and run.generate pass `decode_kernel` (default off:
    # apply() gets the model's own attention exactly as before) and tree decoding refuses it. Quest's compiled decode
    # step (core/quest_step.cpp), opt-in with the decode kernel (`Session.kernels`, default off; the torch path runs
    # exactly as before), the layers' `stored_parts`, and the kernels' shared header (quant_rows.h).
    # Entries no current source produces are dropped.
    "0c18e9db1cd7": "5031dea118d1",
    "0cc747884993": "93113cf4c61a",
    "13ff92a9f987": "a7ef7326283f",
    "1a7f55b3a349": "9f46977b9b03",
    "1f351eb0c101": "9ccfc764c42d",
    "208d7a41b8ee": "e994f3cca500",
    "311535d94d29": "7d00c49540bd",
    "3c3c2406a65e": "e99aada68001",
    "3d946c8c5cfa": "4ac35a5bfbfa",
    "45c44ca46033": "49f70e27ebf3",
    "4733406de1f2": "faf97c48aaaf",
    "48ee4ee9bffa": "6ba223e03f94",
    "5174e29d2172": "50c1d328b46c",
    "53470a7ea953": "949b92e9daf0",
    "553dc56ea38b": "eb43e793047e",
    "5e9345e15025": "c752fef0148b",
    "65ee4744ed04": "3aec48395932",
    "6a9c796ef44c": "3fb49f55a231",
    "70b9851f7535": "4d61ad20cc0c",
    "7c5f392bd345": "f04c6678e619",
    "834c35aedbdb": "139341e3ad8b",
    "b0c9b2eac12a": "5f09a713ea0c",
    "bd4fd3f534ca": "deb8eb75246d",
    "c0431d69c874": "1d1ab33f3697",
    "d19a04adf788": "808f972afb1a",
    "d8a8cc4ee29c": "a277a48626ac",
    "e28c0f9d5e96": "dcfc8bc26ab8",
    "e44e23921114": "9dc3f8500857",
    "e8ba057b5224": "1ade962f3e7f",
    "ef9c2e5b3e88": "0e620232c6f1",
    "f5ae1779e85e": "8bc5195b2599",
    "fab5cc6465cc": "8b72612fb813",
}
