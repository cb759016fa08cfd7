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
    # default group, 64, as before). Docstrings.
    # Entries no current source produces are dropped.
    "057b31a80bb4": "1d1ab33f3697",
    "0598659d334f": "faf97c48aaaf",
    "09c67f2a35c7": "5f09a713ea0c",
    "0c3068e69006": "eb43e793047e",
    "0fcc87521bca": "e99aada68001",
    "243291c9cfee": "93113cf4c61a",
    "296bb26a2720": "808f972afb1a",
    "2d73bdbdceb2": "8b72612fb813",
    "2d9185151ed3": "6ba223e03f94",
    "36af64f2328f": "3fb49f55a231",
    "4b408199ff20": "139341e3ad8b",
    "4c15808ff44c": "9dc3f8500857",
    "556940fd003e": "a7ef7326283f",
    "61683cb235f2": "5031dea118d1",
    "85e90707ff7c": "9ccfc764c42d",
    "89034bfc03c8": "949b92e9daf0",
    "89f8558815cd": "8bc5195b2599",
    "8ee9d445ef54": "deb8eb75246d",
    "904bc73972a9": "f04c6678e619",
    "926011a02ebc": "1ade962f3e7f",
    "a9c50aa35a52": "0e620232c6f1",
    "ae9c18e91255": "a277a48626ac",
    "aea9872b74e6": "50c1d328b46c",
    "c2f4d8195fbf": "49f70e27ebf3",
    "c8033bba226f": "c752fef0148b",
    "cbf4e80a0ce0": "dcfc8bc26ab8",
    "e11204b903c8": "9f46977b9b03",
    "e30944eff81c": "e994f3cca500",
    "e6f7e96f4bb2": "4ac35a5bfbfa",
    "e9a2e451fa31": "7d00c49540bd",
    "f3ce94845e3a": "4d61ad20cc0c",
    "f6399848fca1": "3aec48395932",
}
