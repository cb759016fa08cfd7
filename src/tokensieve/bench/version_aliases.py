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
    # model's own attention runs exactly as before (`with_kernel` returns it unchanged).
    # Entries no current source produces are dropped.
    "1e3a740a25a7": "50c1d328b46c",
    "2220a471bd35": "9ccfc764c42d",
    "22f8fc607363": "6ba223e03f94",
    "31e05bc3e9bb": "f04c6678e619",
    "35b1b16cd06b": "5f09a713ea0c",
    "360f40de584f": "e994f3cca500",
    "4a48b8676e73": "dcfc8bc26ab8",
    "4f4ad8d76086": "a7ef7326283f",
    "552c190e8233": "9dc3f8500857",
    "55792db0d1b9": "4ac35a5bfbfa",
    "5715b09fcebe": "93113cf4c61a",
    "6b6469c4865a": "4d61ad20cc0c",
    "77637c908dc2": "9f46977b9b03",
    "81f006b64d6b": "deb8eb75246d",
    "8f3c28568a19": "139341e3ad8b",
    "930d71aeced2": "0e620232c6f1",
    "954bc34fd0a0": "1d1ab33f3697",
    "966854811607": "8b72612fb813",
    "9a9cb36b4d05": "949b92e9daf0",
    "9f5fcb7adb2e": "c752fef0148b",
    "b630eaacb753": "3aec48395932",
    "b84f07aa25e6": "e99aada68001",
    "b97077d64096": "eb43e793047e",
    "bf2150d1a063": "1ade962f3e7f",
    "bffb839bdb8a": "a277a48626ac",
    "caa17f0fcc7d": "808f972afb1a",
    "e12474422a7a": "5031dea118d1",
    "e6981bd420a9": "49f70e27ebf3",
    "ed273ed1c76c": "3fb49f55a231",
    "f1c80ca86b02": "8bc5195b2599",
    "f27403a10e7f": "7d00c49540bd",
    "f5f8aa499e5a": "faf97c48aaaf",
}
