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
    # Entries no current source produces are dropped.
    "0014934e298b": "c752fef0148b",
    "004433081fdc": "9f46977b9b03",
    "02bfabecab23": "139341e3ad8b",
    "06b89eace2bf": "e99aada68001",
    "075949cc25da": "9f46977b9b03",
    "08f71a1b27f3": "a7ef7326283f",
    "0976daf5c130": "dcfc8bc26ab8",
    "1abeb7441f81": "5031dea118d1",
    "2882f85ed8dc": "3fb49f55a231",
    "2e9b9061c1b7": "a18ce7c22745",
    "31e693002c0a": "4d61ad20cc0c",
    "35589d81a1a4": "deb8eb75246d",
    "3cd402f1db6a": "8b72612fb813",
    "5307bb698d4a": "4d61ad20cc0c",
    "54f9a00b2d8d": "949b92e9daf0",
    "5aa2113bcfe8": "3aec48395932",
    "5b32e45f9579": "9dc3f8500857",
    "70953333343a": "0bfa830ae4c6",
    "7c2678260cbb": "808f972afb1a",
    "8eb60321976a": "49f70e27ebf3",
    "944cd03c8a90": "0525ff082bc9",
    "94d181395700": "8bc5195b2599",
    "9fbc6606b7c2": "4344078378a0",
    "a1a3d6b8efbf": "eb43e793047e",
    "a3323fb54e9b": "faf97c48aaaf",
    "b736a0173c1f": "7d00c49540bd",
    "c16df7c98bd1": "0e620232c6f1",
    "c23fdd29ec9d": "9ccfc764c42d",
    "c7ab1c32f8bd": "a277a48626ac",
    "c8880198fbef": "808f972afb1a",
    "cb7b79312113": "93113cf4c61a",
    "d5309406074e": "1d1ab33f3697",
    "d77b141c2766": "4ac35a5bfbfa",
    "dd3583bfc729": "50c1d328b46c",
    "e176998b92aa": "f04c6678e619",
    "e430190251b7": "e994f3cca500",
    "e481c002aea9": "5f09a713ea0c",
    "e7becc7d852a": "9f46977b9b03",
    "ecf7406868f4": "1ade962f3e7f",
    "fd3d66420878": "6ba223e03f94",
}
