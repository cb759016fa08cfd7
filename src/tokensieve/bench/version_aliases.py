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
    # apply() gets the model's own attention exactly as before) and tree decoding refuses it.
    # Entries no current source produces are dropped.
    "00230b7ff9a7": "8b72612fb813",
    "0295eeb99101": "5f09a713ea0c",
    "0d593af63878": "808f972afb1a",
    "16e8934417ab": "49f70e27ebf3",
    "17f7ca60f38d": "9ccfc764c42d",
    "1b9d82f60d35": "f04c6678e619",
    "3341ac739fae": "c752fef0148b",
    "413867714333": "deb8eb75246d",
    "482c267409a9": "e994f3cca500",
    "617bfe8475b4": "3fb49f55a231",
    "6f4872fe39db": "4ac35a5bfbfa",
    "780f63132ec5": "1ade962f3e7f",
    "7f8c2fcaeafe": "7d00c49540bd",
    "80f9cd93639f": "a7ef7326283f",
    "8642043d0a6c": "eb43e793047e",
    "9516ef83ab85": "6ba223e03f94",
    "98ebb890897e": "8bc5195b2599",
    "a2bc44ae10a1": "50c1d328b46c",
    "adeefe6a7e21": "9f46977b9b03",
    "b15d9b1e8e35": "4d61ad20cc0c",
    "b2aa9ef91309": "dcfc8bc26ab8",
    "bb155225579c": "5031dea118d1",
    "bc1b96e5e5d2": "3aec48395932",
    "be2b606ea2a4": "faf97c48aaaf",
    "c285aee26710": "0e620232c6f1",
    "cc0d3c261a89": "93113cf4c61a",
    "d2d8249ff469": "949b92e9daf0",
    "d7872674b71b": "a277a48626ac",
    "d7f026d8be6f": "9dc3f8500857",
    "db1420e17c5e": "e99aada68001",
    "dd1ec3a280a6": "139341e3ad8b",
    "f0900cd45529": "1d1ab33f3697",
}
