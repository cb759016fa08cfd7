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
    # Entries no current source produces are dropped.
    "04812a934d91": "0e620232c6f1",
    "0b080e2cb96f": "1ade962f3e7f",
    "0c929ce44e6b": "dcfc8bc26ab8",
    "1bd643b55746": "8b72612fb813",
    "2832ad064aac": "1d1ab33f3697",
    "39c775408196": "a7ef7326283f",
    "4dd213c68a3e": "c752fef0148b",
    "574d71abe309": "49f70e27ebf3",
    "60a9e3af564c": "9ccfc764c42d",
    "62d90002b64a": "93113cf4c61a",
    "6db599d40042": "50c1d328b46c",
    "84f809682660": "f04c6678e619",
    "8f01b46ab893": "4ac35a5bfbfa",
    "a1a428784e63": "3fb49f55a231",
    "a2ac6dc85a3c": "e994f3cca500",
    "a70dfaca4d93": "139341e3ad8b",
    "adc91a04217a": "4d61ad20cc0c",
    "b0834fd81785": "808f972afb1a",
    "b5b634847215": "3aec48395932",
    "be4c2d62d69b": "5031dea118d1",
    "bece62df07dc": "deb8eb75246d",
    "bf5c54649b45": "9f46977b9b03",
    "cb88b24defe9": "949b92e9daf0",
    "cdedbe505cce": "eb43e793047e",
    "cfc269ae6cdf": "a277a48626ac",
    "d725c0aaa6ef": "9dc3f8500857",
    "d7bc86795c48": "7d00c49540bd",
    "da34df4d0f33": "5f09a713ea0c",
    "ed2b4d0a597c": "faf97c48aaaf",
    "f4a81ffebb55": "e99aada68001",
    "fdbd916365c3": "6ba223e03f94",
}
