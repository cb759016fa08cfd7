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
    # Twelfth: Quest over a coded store (issue 28) summarises its pages by two key codes per channel
    # (core/code_pages.py) and starts them after the store's full-precision sinks, so `quest@int4` and `quest@int8`
    # attend other pages than before and are not carried over (their cells run again); a method string's storage
    # precision is now hashed into its version (`cell.storage_salt`) so that they can be told from `quest`, whose
    # full-precision path is unchanged (identical tokens, attended counts, bytes and state on SmolLM2 needles of 1,500
    # and 3,000 tokens, with and without the compiled step). The layers' `coded()` / `code_origin()` / `bits`,
    # `Policy.state_bytes(kv_bits=)`, quant's `pack_codes` / `unpack_codes` made public: no other result changes.
    # After those two methods' SmolLM2 cells ran: `Quest.state_bytes` for pages that do not divide the group (the
    # pool's reservation only) and the code pages' bounds computed by a compiled loop where it builds (bit-identical
    # to the torch path, tests/test_code_pages.py), so every method keeps the version its cells carry.
    # Entries no current source produces are dropped.
    "053e3251227d": "0bfa830ae4c6",
    "09c18422b4a2": "139341e3ad8b",
    "18119a41457f": "8bc5195b2599",
    "2666e0aacbf2": "9f46977b9b03",
    "2735ebc562ff": "f04c6678e619",
    "29d1caf4b5f6": "9dc3f8500857",
    "2bd009c513eb": "4ac35a5bfbfa",
    "2ffa92f57b37": "49f70e27ebf3",
    "314bf73190bf": "0e620232c6f1",
    "3167fdb8823b": "949b92e9daf0",
    "35652bc3927c": "4d61ad20cc0c",
    "3a69b251559d": "9ccfc764c42d",
    "405170111860": "9f46977b9b03",
    "475f9b34f56f": "dcfc8bc26ab8",
    "47f96631aa21": "a277a48626ac",
    "4872179b5854": "faf97c48aaaf",
    "4cb3e580024c": "9f46977b9b03",
    "56f07f56f2cd": "93113cf4c61a",
    "574d83f82581": "a18ce7c22745",
    "59ad386fb28c": "1d1ab33f3697",
    "6af1e9244790": "808f972afb1a",
    "6c1590b858fa": "a7ef7326283f",
    "74d8d87ec6d0": "c752fef0148b",
    "7f086a67acb7": "5031dea118d1",
    "825b96dadc3b": "50c1d328b46c",
    "82a90ff488c3": "e994f3cca500",
    "8d6a2f9944f1": "6ba223e03f94",
    "91986ee93dc4": "eb43e793047e",
    "9c0375ac4895": "5f09a713ea0c",
    "a98e8ae89e73": "7d00c49540bd",
    "ad466c8d0f6f": "808f972afb1a",
    "b51ccdc7e1f2": "4d61ad20cc0c",
    "c78b65fe87f7": "e99aada68001",
    "cd204ab26fd1": "deb8eb75246d",
    "d5467edbf6da": "8b72612fb813",
    "d6efec0bb4aa": "1ade962f3e7f",
    "d84bd3564d6e": "3fb49f55a231",
    "e0bdaec5ceec": "3aec48395932",
}
