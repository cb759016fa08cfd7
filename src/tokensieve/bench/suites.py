"""Named grids: which cases, methods and budgets a suite runs, and the validation of user choices."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokensieve.bench import peers
from tokensieve.bench.tasks import TASKS, needle_cases
from tokensieve.core.budget import Budget
from tokensieve.errors import TokensieveError

TS_METHODS = ("full", "streaming_llm", "snapkv", "tova", "knorm", "h2o", "pyramid", "random", "window")
DYNAMIC_METHODS = ("tokenselect", "fasa", "indexer_topk", "hisa", "rectified", "cluster")


@dataclass
class Part:
    """One grid of a suite: every case x method x budget. A suite is several parts, so that the expensive
    cases (8k needles, a long stream) run only the methods worth their cost."""

    cases: list[dict]
    methods: list[str]
    budgets: list[float]
    repeats: int = 1  # timed runs per cell (median); the process warms up once per model first
    peers: list[str] = field(default_factory=list)  # added when the kvpress venv exists


@dataclass
class Suite:
    name: str
    parts: list[Part]


def diagonal_needles(lengths, pairs) -> list[dict]:
    """Needle cases at every length for each (depth, needle) pair: each needle and depth is still covered,
    at a third of the cost of the full depth x needle product."""
    return [c for t in lengths for d, n in pairs for c in needle_cases([t], [d], [n])]


def quick() -> Suite:
    cases = needle_cases([1024, 2048], [0.1, 0.5, 0.9], [0, 3])
    cases.append({"task": "fidelity", "tokens": 1024, "continuation": 64, "offset": 3})
    return Suite("quick", [Part(cases, ["full", "streaming_llm", "snapkv", "tova"], [0.25, 0.5],
                                peers=["kvpress:snapkv", "kvpress:expected_attention"])])


def standard() -> Suite:
    """The published suite (docs/RESULTS.md), sized to about an hour on 2 CPU cores."""
    pairs = [(0.1, 0), (0.5, 1), (0.9, 2)]
    all_presses = [peers.PREFIX + p for p in peers.DEFAULT_PRESSES]
    breadth = diagonal_needles([1024, 2048, 4096], pairs)
    breadth += [{"task": "fidelity", "tokens": 2048, "continuation": 128, "offset": o} for o in (3, 11)]
    long_needles = diagonal_needles([8000], pairs)
    stream = [{"task": "streaming", "tokens": 3 * 8192, "chunk": 512, "window": 8192}]
    return Suite("standard", [
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
             peers=[peers.PREFIX + p for p in peers.DEFAULT_PRESSES]),
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


SUITES = {"quick": quick, "standard": standard, "equal": equal, "stream": stream}


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
    from tokensieve.core.policy import REGISTRY
    from tokensieve.kv import full  # noqa: F401  (registers the KV policies)

    for m in methods:
        if peers.is_peer(m):
            peers.press_name(m)
        elif m not in REGISTRY:
            known = ", ".join(sorted(REGISTRY)) + ", kvpress:<" + "|".join(sorted(peers.PRESSES)) + ">"
            raise TokensieveError(f"unknown method '{m}': choose from {known}")
    return methods


def check_tasks(tasks: list[str]) -> list[str]:
    for t in tasks:
        if t not in TASKS:
            raise TokensieveError(f"unknown task '{t}': choose from {', '.join(TASKS)}")
    return tasks
