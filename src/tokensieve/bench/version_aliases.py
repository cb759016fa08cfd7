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
    # Thirteenth: the server's one-piece prefill codes each layer as it attends (`Session.code_when_attended`,
    # default off: `generate` and every cell run exactly as before, and the codes equal those of compacting after
    # the prompt, tests/test_kv_dtype.py); `SieveLayer.compact()` (a no-op at full precision) and
    # `Footprint.prefill_bytes(kv_dtype=)` (the pool only). Quest reads the store's own key group
    # (`SieveLayer.group`) where it read the default, which every stored cell's store used: no result changes.
    # A new method (`quest_vote`) in the registry and in the kv-store suite: the other methods' cells are unchanged.
    # After its SmolLM2 cells ran: its docstring.
    # Fourteenth: quest_vote's compiled step (Quest's call with `candidates`, core/quest_step.cpp; opt-in with the
    # decode kernel, which no stored cell used) and keys-alone / values-alone reads (`SieveLayer.gather_keys` /
    # `gather_values`, `QuantizedRows.dequantize_rows(keys=, values=)`, the kernels' flags): quest_vote's torch path
    # now reads its candidates' keys, then the chosen rows' values, the same rows bit for bit
    # (tests/test_dequantize_kernel.py), so no result changes.
    # Fifteenth: Quest and quest_vote bound their newest pages from keys read alone (`SieveLayer.span_keys`; the
    # same bits, tests/test_kv_dtype.py), so no result changes.
    # Sixteenth: the server's packed step runs every sequence's compiled Quest step over a layer in one call
    # (`DynamicPolicy.quest_call`, core/quest_calls.py; opt-in with the decode kernel, which no stored cell used;
    # each output bit-identical to its own call, tests/test_quest_step.py), and Quest's decode step split into
    # `sparse_keeps` and `compiled_call` (the same steps in the same order), so no result changes. After the
    # read-through: `Quest.compiled` answers yes or no, and the hook's session lookup is one function.
    # Seventeenth: tree decoding under int8 weights through the compiled product (`decode.loop.exact_rows`,
    # `check_rows`; opt-in with the decode kernel, which no stored cell used), the suffix drafter's cost key naming
    # the weights and kernels and its trees capped at the compiled product's rows there (fp32 cells keep 32), and
    # `DecodeOptions.packed_from_rows` (default `FROM_ROWS`, as before), so no result changes.
    # Then `RunOptions` packed_gemm (greedy `generate --packed-gemm`: prompt pieces through prepacked linears;
    # default off, which every stored cell ran), so no result changes.
    # After the read-through: speculate's refusal of packed non-fp32 weights names the weights.
    # Eighteenth: quest_paged (issue 31, stage 3) added to the method table, with core/pages.py (its page count
    # and score) and the vLLM plugin's page selection; no existing method changes.
    # After the read-through: quest_paged's docstring names the plugin's policy by its name.
    # Nineteenth: a selector whose whole-page budget cannot leave anything out (quest_paged when page 0 and the
    # recent pages cover every token) counts that dense step as a dense fallback; only quest_paged can reach it,
    # and none of its stored cells did (4k prompts), so no stored result changes.
    # Entries no current source produces are dropped.
    "0ab1434ab2c2": "e994f3cca500",
    "0f8af2be500d": "a18ce7c22745",
    "10b39fc4bd16": "dcfc8bc26ab8",
    "10f684552ee5": "eb43e793047e",
    "19704fcfc2df": "808f972afb1a",
    "1dbda1124323": "808f972afb1a",
    "21bc884088bc": "c752fef0148b",
    "2b2b9509f6aa": "3aec48395932",
    "2d9764dfa98a": "faf97c48aaaf",
    "34d8c948c95d": "50c1d328b46c",
    "3663f6130407": "a7ef7326283f",
    "36a4a4b1ecea": "8bc5195b2599",
    "3c10dd53172f": "4344078378a0",
    "3ebb136ab4e9": "9ccfc764c42d",
    "4035dc8df2ff": "3fb49f55a231",
    "4550ff46709e": "9dc3f8500857",
    "473fae668a6d": "49f70e27ebf3",
    "542547cde8a1": "1d1ab33f3697",
    "5bfac66385c0": "0525ff082bc9",
    "5cf61f09da2c": "4d61ad20cc0c",
    "5f96b18101d4": "0bfa830ae4c6",
    "665a38c0909d": "5031dea118d1",
    "6681c68d3c40": "e99aada68001",
    "8472d1bf7ff7": "44ee31dcf4f0",
    "84b32bf4da2b": "1ade962f3e7f",
    "8c7e9f98f6a9": "4ac35a5bfbfa",
    "97b444881d25": "deb8eb75246d",
    "a48218f72e73": "6ba223e03f94",
    "a6e09f6a85ed": "0e620232c6f1",
    "ad0448f274cb": "93113cf4c61a",
    "aec0ca0ffdd8": "7d00c49540bd",
    "b04ed016817c": "8b72612fb813",
    "b7f9cd7d24ae": "9f46977b9b03",
    "b7fab461e057": "9f46977b9b03",
    "ce3904210d53": "f04c6678e619",
    "d612171ed038": "4d61ad20cc0c",
    "d6f7f37b0b12": "a277a48626ac",
    "dff8e305493a": "5f09a713ea0c",
    "e7c639a27631": "949b92e9daf0",
    "fb20b2fbb5a6": "9f46977b9b03",
    "fc8973ef49bf": "139341e3ad8b",
}
