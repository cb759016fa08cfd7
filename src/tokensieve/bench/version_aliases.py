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
    "0572d257ed79": "49f70e27ebf3",
    "113d55405fea": "e99aada68001",
    "139e9570d8c3": "6ba223e03f94",
    "293d0eb5086d": "a7ef7326283f",
    "2afab56cc2eb": "139341e3ad8b",
    "2b288ed8571c": "faf97c48aaaf",
    "363ea2a54476": "50c1d328b46c",
    "4df36dca802e": "7d00c49540bd",
    "5387166fc700": "9f46977b9b03",
    "576f32d67784": "808f972afb1a",
    "5d5cb518717c": "9ccfc764c42d",
    "672b1e21f362": "3aec48395932",
    "69345ea3b2d8": "1d1ab33f3697",
    "7c018ad31c83": "949b92e9daf0",
    "9b9ce252504c": "9dc3f8500857",
    "a137bbf20a29": "1ade962f3e7f",
    "a15ee624fac3": "c752fef0148b",
    "b32e8b47b9f5": "4ac35a5bfbfa",
    "beefc2d458cd": "8bc5195b2599",
    "bff1bd30f798": "e994f3cca500",
    "c2e58f2ed8fd": "dcfc8bc26ab8",
    "c4371641b586": "0e620232c6f1",
    "c476a5a17ff4": "4d61ad20cc0c",
    "c98286cd2582": "eb43e793047e",
    "d77d22671f6d": "93113cf4c61a",
    "d89172dc05e7": "5031dea118d1",
    "d892d0880847": "a277a48626ac",
    "e01e0771b2a6": "3fb49f55a231",
    "e5f4b327946c": "f04c6678e619",
    "e9a967bc1032": "deb8eb75246d",
    "ebf1e068ff83": "8b72612fb813",
    "fdcc6baca00c": "5f09a713ea0c",
}
