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
    # exactly as before), the layers' `stored_parts`, the kernels' shared headers, and `core.gemm.prepack` (the
    # engine's `packed_gemm` packs through it; no stored cell ran with prepacked linears).
    # Entries no current source produces are dropped.
    "045046c86fe8": "3aec48395932",
    "0806b68219bf": "93113cf4c61a",
    "0c6edff22e2e": "8b72612fb813",
    "0f9f479b73a9": "e994f3cca500",
    "1559ebb747d2": "4ac35a5bfbfa",
    "2499fa637b68": "4d61ad20cc0c",
    "2e8c3f5985c0": "deb8eb75246d",
    "3093648d6bf6": "1d1ab33f3697",
    "3382e7dd95ea": "7d00c49540bd",
    "3a59f5a6b26b": "3fb49f55a231",
    "4bca296f767c": "1ade962f3e7f",
    "51c50ff3a561": "139341e3ad8b",
    "5295dd116dfa": "8bc5195b2599",
    "5a5bb740ed85": "0e620232c6f1",
    "609dbd4f1715": "faf97c48aaaf",
    "66bab2d1bb15": "a277a48626ac",
    "682172ee51a4": "5f09a713ea0c",
    "6a1ecf81167d": "a7ef7326283f",
    "72b88642999f": "f04c6678e619",
    "74c1d83baccc": "eb43e793047e",
    "7929ef796cf1": "49f70e27ebf3",
    "893066bb9abf": "9f46977b9b03",
    "8b8b233f9822": "6ba223e03f94",
    "905d6ea616c6": "9ccfc764c42d",
    "9b0dcfa8907e": "5031dea118d1",
    "9c6d4d9e48e7": "e99aada68001",
    "a558cd867cd7": "9dc3f8500857",
    "adaae6c79931": "c752fef0148b",
    "b93d28fbbefb": "949b92e9daf0",
    "cb04127245f8": "dcfc8bc26ab8",
    "f4b57644ce61": "50c1d328b46c",
    "faf6bcc45950": "808f972afb1a",
}
