"""Named grids: which cases, methods and budgets a suite runs, and the validation of user choices."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokensieve import catalog
from tokensieve.bench.peers import hf_cache, kvpress
from tokensieve.bench.tasks import TASKS, needle_cases
from tokensieve.core.budget import Budget
from tokensieve.errors import TokensieveError

TS_METHODS = catalog.kv_policies()  # full, streaming_llm, snapkv, tova, knorm, h2o, pyramid, random, window
DYNAMIC_METHODS = catalog.selectors()  # tokenselect, fasa, indexer_topk, hisa, rectified, cluster
# The standard suite's main methods (every budget, every length); the rest run at 0.25 where they are cheap.
MAIN_METHODS = ("full", "streaming_llm", "snapkv", "tova", "knorm", "tokenselect", "hisa")
OTHER_METHODS = ("h2o", "pyramid", "random", "window", "fasa", "indexer_topk", "rectified", "cluster")
MAIN_PRESSES = ("snapkv", "expected_attention", "tova", "streaming_llm", "knorm", "pyramidkv", "lagkv", "kvzip")
RULER_SUBTASKS = ("niah_single_word", "niah_single_number", "niah_single_uuid", "niah_multikey", "niah_multivalue",
                  "niah_multiquery", "vt", "cwe", "fwe", "qa")


@dataclass
class Part:
    """One grid of a suite: every case x method x budget. A suite is several parts, so that the expensive
    cases (8k needles, a long stream) run only the methods worth their cost."""

    cases: list[dict]
    methods: list[str]
    budgets: list[float]
    repeats: int = 1  # timed runs per cell (median); the process warms up once per model first
    peers: list[str] = field(default_factory=list)  # added when the kvpress venv exists
    models: list[str] = field(default_factory=list)  # the part's models unless --model names them (empty: smollm2)
    peer_budgets: list[float] = field(default_factory=list)  # the peers' budgets (empty: the part's)


@dataclass
class Suite:
    name: str
    parts: list[Part]
    lanes: int = 1  # local processes side by side unless --lanes says otherwise (capped at the CPU count)


def diagonal_needles(lengths, pairs) -> list[dict]:
    """Needle cases at every length for each (depth, needle) pair: each needle and depth is still covered,
    at a third of the cost of the full depth x needle product."""
    return [c for t in lengths for d, n in pairs for c in needle_cases([t], [d], [n])]


def ruler_cases(lengths, per_length: int, subtasks=RULER_SUBTASKS, first_seed: int = 0) -> list[dict]:
    """`per_length` RULER cases at each length: subtasks in turn, one seed each, haystacks alternating between the
    essays and the Python stdlib's source (cwe and fwe build their own text and ignore it)."""
    out = []
    for tokens in lengths:
        for i in range(first_seed, first_seed + per_length):
            out.append({"task": "ruler", "subtask": subtasks[i % len(subtasks)], "tokens": tokens, "seed": i,
                        "haystack": ("essays", "stdlib")[(i // len(subtasks)) % 2]})
    return out


def code_cases(contexts, problems) -> list[dict]:
    """HumanEval problems, each behind `context` tokens of real stdlib source (0 = the plain problem)."""
    return [{"task": "code", "context": c, "problem": p} for c in contexts for p in problems]


def quick() -> Suite:
    """About 6 minutes on 2 cores: 20 RULER cases at 1k on SmolLM2 (2 per subtask): full, the eviction policies
    and the best dynamic selector of the equal-budget run (tokenselect), at 25 %. n = 20 is small: the report's
    intervals say how little it can separate."""
    cases = ruler_cases([1024], 20)
    return Suite("quick", [Part(cases, ["full", "streaming_llm", "snapkv", "tova", "tokenselect"], [0.25],
                                peers=["kvpress:snapkv", "kvpress:expected_attention"])], lanes=2)


def standard() -> Suite:
    """The published suite (docs/RESULTS.md), about 4 h on 2 CPU cores. RULER cases (10 subtasks in turn, 5 seeds
    each, essays and stdlib haystacks), 50 per (model, length) cell; every case prefilled once and branched per
    method. In order, so that a stopped sweep has the many-case cells first:

    1. SmolLM2-135M at 1k, 2k, 4k: the main methods at 12.5, 25 and 50 %.
    2. Qwen2.5-Coder-0.5B at 4k (kvpress's leaderboard length): the main methods at 12.5, 25 and 50 %, and the
       SnapKV and ExpectedAttention presses at 25 %.
    3. SmolLM2 at 4k: eight kvpress presses at 25 % (KVzip included: it runs on CPU, at 2-3 prefills).
    4. Qwen at 16k (6 cases) and 32k (3; 32,000 tokens, so that the answer fits the 32,768-token context): full
       against the evicting and the dynamic method closest to full at 1k-4k (snapkv, tokenselect); a handful of
       cases: these cells show failures, not rates.
    The rest of the issue's grid is `extended`."""
    main = list(MAIN_METHODS)
    small, qwen = ["smollm2-135m"], ["qwen2.5-coder-0.5b"]
    long = ["full", "snapkv", "tokenselect"]
    return Suite("standard", [
        Part(ruler_cases([1024, 2048, 4096], 50), main, [0.125, 0.25, 0.5], models=small),
        Part(ruler_cases([4096], 50), main, [0.125, 0.25, 0.5], models=qwen,
             peers=[kvpress.PREFIX + p for p in ("snapkv", "expected_attention")], peer_budgets=[0.25]),
        Part(ruler_cases([4096], 50), [], [0.25], peers=[kvpress.PREFIX + p for p in MAIN_PRESSES], models=small),
        Part(ruler_cases([16384], 6) + ruler_cases([32000], 3), long, [0.25], models=qwen),
    ])


def extended() -> Suite:
    """What the standard suite leaves out to fit in 4 hours, run part by part (`--parts`): the other methods at
    25 %, SmolLM2 at 8k, Qwen at 2k and 8k, more presses on Qwen, and HumanEval (plain, and behind 4k, 8k and 16k
    tokens of stdlib source)."""
    main, others = list(MAIN_METHODS), list(OTHER_METHODS)
    small, qwen = ["smollm2-135m"], ["qwen2.5-coder-0.5b"]
    best = ["full", "snapkv", "streaming_llm", "tokenselect"]
    more_presses = [kvpress.PREFIX + p for p in MAIN_PRESSES if p not in ("snapkv", "expected_attention")]
    return Suite("extended", [
        Part(ruler_cases([1024, 2048, 4096], 50), others, [0.25], models=small),
        Part(ruler_cases([8000], 50), main, [0.25], models=small),  # 8,192 + the answer would pass its context
        Part(ruler_cases([2048], 50), main, [0.125, 0.25, 0.5], models=qwen),
        Part(ruler_cases([4096], 50), others, [0.25], peers=more_presses, models=qwen),
        Part(ruler_cases([8192], 50), best, [0.25], models=qwen),
        Part(code_cases([4096], range(50)) + code_cases([8192], range(20)) + code_cases([16384], range(10)), best,
             [0.25], models=qwen),
        Part(code_cases([0], range(164)), ["full", "snapkv", "tokenselect"], [0.5], models=qwen),
    ])


def needles_v1() -> Suite:
    """The needle grid docs/RESULTS-standard-v1.md was made with (3 cases per cell; kept to reproduce it)."""
    pairs = [(0.1, 0), (0.5, 1), (0.9, 2)]
    all_presses = [kvpress.PREFIX + p for p in kvpress.DEFAULT_PRESSES]
    breadth = diagonal_needles([1024, 2048, 4096], pairs)
    breadth += [{"task": "fidelity", "tokens": 2048, "continuation": 128, "offset": o} for o in (3, 11)]
    long_needles = diagonal_needles([8000], pairs)
    stream = [{"task": "streaming", "tokens": 3 * 8192, "chunk": 512, "window": 8192}]
    return Suite("needles-v1", [
        Part(breadth, [*TS_METHODS, *DYNAMIC_METHODS], [0.125, 0.5], peers=all_presses),
        Part(long_needles, ["full", "streaming_llm", "snapkv", "tova", "tokenselect", "hisa", "fasa"], [0.125],
             peers=["kvpress:snapkv", "kvpress:streaming_llm", "kvpress:tova"]),
        Part(stream, ["full", "streaming_llm", "snapkv", "tova", "knorm", "h2o"], [0.125]),
    ])


def equal() -> Suite:
    """Core v2's re-run: the needle grid at 12.5 % (1k-4k) with budgets made equal (sinks, window, reused
    selections and pooled entries charged), every method and press; and a stream past the trained context fed
    token by token, so that streaming_llm evicts during decode (every 32 tokens), with true and rolling positions."""
    pairs = [(0.1, 0), (0.5, 1), (0.9, 2)]
    needles = diagonal_needles([1024, 2048, 4096], pairs)
    stream = {"task": "streaming", "tokens": 3 * 8192, "chunk": 1, "window": 8192, "evict_every": 32}
    return Suite("equal", [
        Part(needles, [*TS_METHODS, *DYNAMIC_METHODS], [0.125],
             peers=[kvpress.PREFIX + p for p in kvpress.DEFAULT_PRESSES]),
        Part([stream, {**stream, "positions": "rolling"}], ["streaming_llm"], [0.125]),
    ])


def stream() -> Suite:
    """A 65,536-token stream (8x SmolLM2's trained context) for streaming_llm at 12.5 % of an 8,192-token window
    with rolling positions, evicting every 32 tokens; full attention over the first 8,192 tokens is the
    in-window reference."""
    reference = {"task": "streaming", "tokens": 8192, "chunk": 512, "window": 8192}
    long = {"task": "streaming", "tokens": 8 * 8192, "chunk": 32, "window": 8192, "evict_every": 32,
            "positions": "rolling"}
    return Suite("stream", [Part([reference], ["full", "streaming_llm"], [0.125]),
                            Part([long], ["streaming_llm"], [0.125])])


ENCODER_METHODS = tuple(catalog.ENCODER_METHODS)  # tome, pitome, zero_tprune, pool_attention, subword, random_prune
SEARCHED_METHODS = ("tome", "pool_attention")  # also run on a schedule searched per budget (encoder.search)


def encoder() -> Suite:
    """Encoder token merging and pruning on MiniLM-L6 (docs/ENCODER.md): retrieval (HumanEval docstring -> code,
    164 pairs; first sentence -> rest of paragraph, 500 pairs) and cosine to the plain model's embeddings (inputs
    up to 256 tokens), throughput at batch 32 and 256 tokens; every method at kept ratios 0.9 to 0.3, and at 128
    and 512 tokens for ToMe and pool attention (ToMe
    and PiToMe merge at most half the rows a layer, so their lowest points keep more: the measured ratio is
    reported). ToMe and [CLS]/pool attention also run on a schedule searched per budget on calibration passages
    ("+search"). About 30 minutes on 2 cores."""
    from tokensieve.bench.encoder_cells import REFERENCE, retrieval_cases, throughput_cases

    methods = [REFERENCE, *ENCODER_METHODS, *(m + "+search" for m in SEARCHED_METHODS)]
    budgets, model = [0.9, 0.7, 0.5, 0.3], ["minilm-l6"]
    return Suite("encoder", [
        Part(retrieval_cases() + throughput_cases([256]), methods, budgets, models=model),
        Part(throughput_cases([128, 512]), [REFERENCE, "tome", "pool_attention"], budgets, models=model),
    ])




def decode() -> Suite:
    """Lossless speculative decoding (docs/DECODE.md), 64 new tokens per prompt, about 50 minutes on 2 cores. Each
    cell also runs plain greedy, so speed-ups are ratios measured side by side (3 interleaved repeats, medians):

    1. Qwen2.5-Coder-0.5B on 3 HumanEval prompts: Token Recycling, our prompt lookup, transformers' prompt lookup,
       suffix drafting.
    2. SmolLM2-135M on 2 prompts each of code, prose and JSON extraction: every drafter, a cold adjacency matrix,
       transformers' prompt lookup and suffix drafting; Token Recycling on top of SnapKV and TokenSelect at 25 % on
       code.
    3. Qwen on 2 essay continuations: Token Recycling and prompt lookup."""
    from tokensieve.bench.decode_cells import cases

    n = 64
    smol = cases("code", range(2), n) + cases("prose", range(2), n) + cases("json", range(2), n)
    return Suite("decode", [
        Part(cases("code", range(3), n), ["greedy", "recycling", "lookup", "hf:lookup", "suffix"], [0.25],
             models=["qwen2.5-coder-0.5b"]),
        Part(smol, ["greedy", "recycling", "recycling:cold", "lookup", "layerskip", "hf:lookup", "suffix"], [0.25],
             models=["smollm2-135m"]),
        Part(cases("code", range(2), n), ["recycling+snapkv", "recycling+tokenselect"], [0.25],
             models=["smollm2-135m"]),
        Part(cases("prose", range(2), n), ["greedy", "recycling", "lookup"], [0.25], models=["qwen2.5-coder-0.5b"]),
    ])


def decode_trees() -> Suite:
    """The draft tree's size against the measured cost of verifying it on this machine (how the CPU default was
    chosen): Token Recycling with trees of 4 to 48 nodes on Qwen2.5-Coder-0.5B's HumanEval prompts."""
    from tokensieve.bench.decode_cells import cases

    trees = ["recycling:4x3", "recycling:8x4", "recycling:24x6", "recycling:48x6"]  # the default is 12x5
    return Suite("decode-trees", [Part(cases("code", range(3), 64), ["greedy", *trees], [0.25],
                                       models=["qwen2.5-coder-0.5b"])])


def decode_assisted() -> Suite:
    """Assisted generation's own pairing: qwen2.5-coder-0.5b drafting for qwen2.5-coder-1.5b (`tokensieve models
    install qwen2.5-coder-1.5b` first), against Token Recycling and prompt lookup on the same prompts."""
    from tokensieve.bench.decode_cells import cases

    return Suite("decode-assisted", [Part(cases("code", range(3), 64), ["greedy", "recycling", "lookup", "hf:lookup",
                                                                      "hf:assisted"], [0.25],
                                          models=["qwen2.5-coder-1.5b"])])


SKIP_METHODS = ("full", "fastv", "spts", "gemfilter", "hisa_prefill", "fastv+hisa")


def prefill_skipping() -> Suite:
    """Issue #15: prefill token skipping against full and against sparse prefill alone (hisa_prefill), at 25 %, on
    the lengths of its goals: SmolLM2 at 8k (8,000 tokens, so that the answer fits in its 8,192; 12 RULER cases) and
    Qwen at 16k (3); part 3 is the two fastest at half the prompt kept. Every method here prefills per
    case (none can branch from a dense prefix), so a case costs a prefill per method."""
    return Suite("prefill", [
        Part(ruler_cases([8000], 12), list(SKIP_METHODS), [0.25], models=["smollm2-135m"]),
        Part(ruler_cases([16384], 3), list(SKIP_METHODS), [0.25], models=["qwen2.5-coder-0.5b"]),
        Part(ruler_cases([8000], 12), ["spts", "fastv+hisa"], [0.5], models=["smollm2-135m"]),  # the frontier
    ])


KV_STORE_METHODS = ("full", "full@int8", "full@int4", "quest", "quest@int8", "quest@int4", "tokenselect",
                    "snapkv@int4", "tokenselect@int4", "hf:quantized@int4", "hf:quantized@int2", "full~int8",
                    "hf:quantized@int4-g32", "quest_vote@int4")


def kv_store() -> Suite:
    """Issue #28: storage precision (`@int8`, `@int4`: KIVI-style codes) and Quest's page selection, on the
    standard suite's 4k RULER cases (the same 50 per model) at 12.5 %, next to full, the best selector
    (tokenselect) and transformers' own QuantizedCache (HQQ int4 / int2, and int4 over groups of 32: the bytes of
    ours; `peers.hf_cache`) in the same run, so
    every comparison is paired; `full~int8` is the full cache on int8 weights (issue 29's weight axis). Part 1 is
    SmolLM2, part 2 Qwen."""
    methods = list(KV_STORE_METHODS)
    return Suite("kv-store", [Part(ruler_cases([4096], 50), methods, [0.125], models=["smollm2-135m"]),
                              Part(ruler_cases([4096], 50), methods, [0.125], models=["qwen2.5-coder-0.5b"])])


SUITES = {"quick": quick, "standard": standard, "extended": extended, "needles-v1": needles_v1, "equal": equal,
          "stream": stream, "encoder": encoder, "decode": decode, "decode-trees": decode_trees,
          "decode-assisted": decode_assisted, "prefill": prefill_skipping, "kv-store": kv_store}


def suite(name: str) -> Suite:
    if name not in SUITES:
        raise TokensieveError(f"unknown suite '{name}': choose from {', '.join(SUITES)}")
    return SUITES[name]()


def parse_budgets(text: str) -> list[float]:
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise TokensieveError(f"budget '{part.strip()}' is not a number; give ratios in (0, 1]") from None
        if not 0 < value <= 1:
            raise TokensieveError(f"budget {part.strip()} is outside (0, 1]")
        values.append(Budget(value).value)
    return values


def check_methods(methods: list[str]) -> list[str]:
    from tokensieve.bench.decode_cells import is_decode_method, split
    from tokensieve.bench.encoder_cells import encoder_methods
    from tokensieve.bench.storage import split_storage
    from tokensieve.methods import REGISTRY

    for m in methods:
        if m in encoder_methods():
            continue
        if is_decode_method(m):
            _, policy = split(m)
            if policy:
                check_methods([policy])
            continue
        if kvpress.is_peer(m):
            kvpress.press_name(m)
        elif hf_cache.is_peer(m):
            try:
                hf_cache.settings_of(m)
            except kvpress.PeerFailed as err:
                raise TokensieveError(str(err)) from None
        elif split_storage(m)[0] not in REGISTRY:
            known = ", ".join(sorted(REGISTRY)) + ", kvpress:<" + "|".join(sorted(kvpress.PRESSES)) + ">"
            raise TokensieveError(f"unknown method '{m}': choose from {known}")
    return methods


def check_tasks(tasks: list[str]) -> list[str]:
    for t in tasks:
        if t not in TASKS:
            raise TokensieveError(f"unknown task '{t}': choose from {', '.join(TASKS)}")
    return tasks
