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
    "0ebbfe0f424c": "3fb49f55a231",
    "154d3e59d932": "a7ef7326283f",
    "1d49b1084184": "93113cf4c61a",
    "3b960102dabc": "e994f3cca500",
    "43ce778a09b9": "3aec48395932",
    "4cd8bfc304f3": "eb43e793047e",
    "54b3cb4ce628": "8b72612fb813",
    "578e3fa89682": "1ade962f3e7f",
    "5af84bbaf412": "9f46977b9b03",
    "5cb2975586a8": "c752fef0148b",
    "5e05031a6b4f": "dcfc8bc26ab8",
    "5f8122eae3a2": "deb8eb75246d",
    "64a9bb146c59": "50c1d328b46c",
    "653086259f4b": "9ccfc764c42d",
    "66fcc80e491a": "49f70e27ebf3",
    "69e6e899df5d": "9dc3f8500857",
    "69fb322adad5": "faf97c48aaaf",
    "70bc9e67e595": "949b92e9daf0",
    "723ebc90577b": "e99aada68001",
    "8a5c6392656e": "a277a48626ac",
    "8cbcfe6ca8de": "7d00c49540bd",
    "a5739a7f1e16": "8bc5195b2599",
    "a877c44ed159": "808f972afb1a",
    "bb1e892e989d": "4ac35a5bfbfa",
    "bd0637d565d8": "1d1ab33f3697",
    "c1127e56ecd5": "4d61ad20cc0c",
    "c58df9a6de10": "5f09a713ea0c",
    "c6b3dd4698b8": "139341e3ad8b",
    "d3874c337e44": "f04c6678e619",
    "dbe3f4f242b8": "5031dea118d1",
    "dfe8905f8ae2": "0e620232c6f1",
    "ebe269fe4611": "6ba223e03f94",
}
