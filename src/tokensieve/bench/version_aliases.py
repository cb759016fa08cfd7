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
    # selected rows are dequantized by a compiled loop where it builds, bit-identical to the torch path
    # (tests/test_dequantize_kernel.py).
    # Entries no current source produces are dropped.
    "034e2e327f18": "deb8eb75246d",
    "153262de6caa": "1d1ab33f3697",
    "1b299ab0bc66": "8bc5195b2599",
    "1f4412c21875": "9ccfc764c42d",
    "23782201f34c": "e994f3cca500",
    "2a12c6c6ed1e": "4d61ad20cc0c",
    "314a44d82bb0": "7d00c49540bd",
    "347c50b3f079": "3aec48395932",
    "361822911bb5": "0e620232c6f1",
    "3a3eb53117f6": "f04c6678e619",
    "3b4f192e2a65": "808f972afb1a",
    "3cf61a2568de": "faf97c48aaaf",
    "47ee13f110f7": "4ac35a5bfbfa",
    "4878f504fc53": "93113cf4c61a",
    "497a1878b146": "9dc3f8500857",
    "55d9f2b2300b": "50c1d328b46c",
    "592017045f9e": "eb43e793047e",
    "7b46d573002f": "8b72612fb813",
    "820834f74a93": "a7ef7326283f",
    "839eb85cd734": "9f46977b9b03",
    "86ebd5b55bdb": "1ade962f3e7f",
    "91626310b37b": "49f70e27ebf3",
    "a36edb1b601a": "c752fef0148b",
    "a5b66a88bd8b": "a277a48626ac",
    "becb76a2092d": "e99aada68001",
    "ca7af9ed7e1d": "dcfc8bc26ab8",
    "d661c3e3a91f": "949b92e9daf0",
    "d83c85a393da": "5031dea118d1",
    "dbb28567b43e": "6ba223e03f94",
    "de70bccd217c": "3fb49f55a231",
    "f2d51a587645": "139341e3ad8b",
    "fd7fef53a3c7": "5f09a713ea0c",
}
