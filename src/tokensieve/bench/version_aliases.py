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
    "09e0bb107ec0": "3aec48395932",
    "15ebcd4af4c1": "49f70e27ebf3",
    "171c084c519e": "93113cf4c61a",
    "2bff3f6eb028": "a7ef7326283f",
    "327c32733ff6": "c752fef0148b",
    "3e31939733c1": "9ccfc764c42d",
    "4b7f39e16ff8": "9dc3f8500857",
    "5bfaeab0ceb9": "1ade962f3e7f",
    "5c702a1cce22": "eb43e793047e",
    "5d23f09923f7": "dcfc8bc26ab8",
    "5e7402b8aa27": "8b72612fb813",
    "8075828284ad": "4d61ad20cc0c",
    "844973a5b1f7": "5f09a713ea0c",
    "85754b0fbb47": "a277a48626ac",
    "8999f38dd4d4": "8bc5195b2599",
    "89addc0f5a15": "7d00c49540bd",
    "a0ce2774a5ca": "1d1ab33f3697",
    "a1cc543050a3": "f04c6678e619",
    "aee12a3a0f53": "5031dea118d1",
    "b3075760b951": "deb8eb75246d",
    "b31dedeadefa": "9f46977b9b03",
    "b85594b91fd3": "e99aada68001",
    "bd4e7d1206cb": "3fb49f55a231",
    "bee3ce8dc3ca": "6ba223e03f94",
    "d90ef1553950": "0e620232c6f1",
    "de30debaa6d4": "4ac35a5bfbfa",
    "e3e4fc71e58c": "faf97c48aaaf",
    "e9edb38f6fbc": "139341e3ad8b",
    "ec0cf22ba310": "e994f3cca500",
    "f35a3c9a482f": "50c1d328b46c",
    "fdc0fa6362b4": "808f972afb1a",
    "fecee98d86e6": "949b92e9daf0",
}
