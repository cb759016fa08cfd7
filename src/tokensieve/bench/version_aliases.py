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
    # Eleventh: int8 weights' compiled small products (core/int8_linear.cpp, `core.int8_kernel`), opt-in with the
    # decode kernel (default off: `Int8Linear.product` is None and the default products run exactly as before;
    # the new `float_scales` buffer is the same scales widened, unused by the default path). Quest's page bounds
    # counted: runs record a new `policy_state_bytes` metric (every existing metric unchanged; cells stored
    # before it lack it, and reports count it as 0), and `Policy.state_bytes` (Quest, HISA, rectified, FASA; used
    # by the KV pool only). HISA's block pools and sparse prefill's pool no longer pool an unused copy of the keys
    # as values (the scores read the pooled keys only, as before). The hf:quantized peer's `-gN` suffix (the
    # default group, 64, as before). `Session.state_bytes` (what the pool and the new metric read). Docstrings.
    # Entries no current source produces are dropped.
    "1273fbf96309": "eb43e793047e",
    "43811a53f6d5": "6ba223e03f94",
    "4cc248a8578a": "4d61ad20cc0c",
    "53510ff3f1a7": "dcfc8bc26ab8",
    "553392a7a903": "a277a48626ac",
    "5f4f46f6df9b": "49f70e27ebf3",
    "624bcdb511ba": "7d00c49540bd",
    "6252faa567f0": "808f972afb1a",
    "6398525817bf": "c752fef0148b",
    "679a2d8ba4e1": "8b72612fb813",
    "69345367cbb9": "faf97c48aaaf",
    "7f52ce7dbd99": "a7ef7326283f",
    "8768808e2a99": "deb8eb75246d",
    "943009b5fa2f": "9dc3f8500857",
    "95eccc6be29d": "f04c6678e619",
    "9b9fc3f42ef5": "1d1ab33f3697",
    "a478448d4a97": "949b92e9daf0",
    "a8cf77f21a8f": "139341e3ad8b",
    "aa72dfc14733": "8bc5195b2599",
    "abab7dc2cb82": "9ccfc764c42d",
    "b893236ec801": "93113cf4c61a",
    "c39f926d02b2": "5f09a713ea0c",
    "c51fbd80eed7": "e99aada68001",
    "cc867b9934fb": "1ade962f3e7f",
    "cea6a0ef60af": "3aec48395932",
    "cfad659cab7a": "4ac35a5bfbfa",
    "dacb25eae536": "3fb49f55a231",
    "e168b75f984f": "5031dea118d1",
    "e1c3799a4a98": "e994f3cca500",
    "e3f898c65c78": "0e620232c6f1",
    "e5d67add24a4": "9f46977b9b03",
    "eba0a7fc9566": "50c1d328b46c",
}
