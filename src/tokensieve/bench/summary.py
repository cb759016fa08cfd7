"""Rows -> one summary line per (model, task, context length, method, budget): quality and cost, aggregated
honestly (means of per-case quality, medians of timings, failed cells counted). Lengths are never pooled: cost
grows with the context, and a suite may run its longest cases for only some methods.

Each line also checks the budget a method really used against the nominal one (see `budget_check`), carries a 95 %
interval of its quality and, unless it is `full`, the paired comparison with `full` on the cases both have."""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

# kvpress:snapkv is compared with our snapkv head to head
from tokensieve.bench.peers import hf_cache
from tokensieve.bench.peers.kvpress import PREFIX as PEER_PREFIX
from tokensieve.bench.stats import Interval, Paired, compare, interval
from tokensieve.bench.storage import split_storage


@dataclass
class Line:
    model: str
    task: str
    tokens: int
    method: str
    budget: float
    n: int = 0
    failed: int = 0
    error: str = ""
    quality: float | None = None
    kv_frac: float | None = None
    kv_mb: float | None = None
    prefill_s: float | None = None
    decode_tok_s: float | None = None
    peak_rss_mb: float | None = None
    gflops: float | None = None
    checked: int = 0  # ok cases whose real budget could be compared with the nominal one
    over_budget: int = 0  # ... and of those, the cases that used more than the nominal budget
    worst: tuple[int, int] | None = None  # (real, nominal) tokens of the case furthest over budget
    interval: Interval | None = None  # 95 % interval of the mean per-case quality (Wilson for 0/1, else bootstrap)
    vs_full: Paired | None = None  # this line - `full` (same model, task, length) on the cases both have
    vs_peer: Paired | None = None  # this line - kvpress's press of the same method and budget, on their common cases
    peer: str = ""  # ... that press (kvpress:<name>, or the one the policy declares as its `peer_press`)
    subtasks: dict[str, float] = field(default_factory=dict)  # RULER: mean quality per subtask
    subtask_n: dict[str, int] = field(default_factory=dict)  # ... and its number of cases
    extra: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        if hf_cache.is_peer(self.method):
            return "transformers"
        return "kvpress" if self.method.startswith(PEER_PREFIX) else "tokensieve"


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def latest_version(rows: list[dict]) -> list[dict]:
    """Keep, per cell identity, the row of the newest code version present (older versions stay in the DB)."""
    best: dict[tuple, dict] = {}
    for row in rows:
        ident = (row["model"], row["case_id"], row["method"], row["budget"])
        if ident not in best or row.get("created", 0) >= best[ident].get("created", 0):
            best[ident] = row
    return list(best.values())


REFERENCE = "full"  # the unmodified cache every method is compared with


def summarise(rows: list[dict]) -> list[Line]:
    """One line per (model, task, context length, method, budget). Rows are grouped once; the paired comparison
    with `full` looks its cases up by case_id, so ~20k rows stay fast (the bootstrap is the cost, per line)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["model"], row["task"], context_tokens(row), method_label(row), row["budget"])].append(row)
    scores = {key: _scores(group) for key, group in groups.items()}
    references = _references(scores)
    lines = []
    for key, group in sorted(groups.items()):
        line = _line(key, group)
        _add_stats(line, scores[key], references.get(key[:3]))
        peer = PEER_PREFIX + peer_press(key[3])
        if (*key[:3], peer, key[4]) in scores and key[3] != REFERENCE:
            line.vs_peer, line.peer = _paired(scores[(*key[:3], peer, key[4])], scores[key]), peer
        lines.append(line)
    return lines


def peer_press(method: str) -> str:
    """The kvpress press that implements the same method: the one a policy names as its `peer_press` (a variant
    such as tova_layer), else the press of the same name."""
    from tokensieve.methods import REGISTRY

    return getattr(REGISTRY.get(method), "peer_press", method)


def _line(key: tuple, group: list[dict]) -> Line:
    """Quality and cost of one group of rows (one cell identity, every case)."""
    model, task, tokens, method, budget = key
    ok = [r for r in group if r["status"] == "ok"]
    bad = [r for r in group if r["status"] != "ok"]
    m = [r["metrics"] for r in ok]
    line = Line(model, task, tokens, method, budget, n=len(ok), failed=len(bad),
                error=bad[0]["metrics"].get("error", "")[:120] if bad else "")
    if not m:
        return line
    line.quality = _mean([r["quality"] for r in ok])
    # a selector's summaries count too (recorded by cells since `policy_state_bytes` exists; 0 before)
    line.kv_frac = _mean([(x["kv_bytes_kept"] + x.get("policy_state_bytes", 0)) / x["kv_bytes_full"] for x in m
                          if x.get("kv_bytes_full")])
    line.kv_mb = _mean([x["kv_bytes_kept"] + x.get("policy_state_bytes", 0) for x in m
                        if x.get("kv_bytes_kept") is not None])
    line.kv_mb = line.kv_mb / 2**20 if line.kv_mb is not None else None
    line.prefill_s = _median([x.get("prefill_s") for x in m])
    line.decode_tok_s = _median([x.get("decode_tok_s") for x in m])
    line.peak_rss_mb = _median([x.get("peak_rss_mb") for x in m])
    flops = _mean([x.get("attention_flops") for x in m])
    line.gflops = flops / 1e9 if flops is not None else None
    for name in ("kl", "ppl_ratio", "ppl", "tok_s", "seconds"):
        value = _mean([x.get(name) for x in m])
        if value is not None:
            line.extra[name] = value
    for row in ok:
        check = budget_check(row)
        if check is None:
            continue
        line.checked += 1
        real, nominal = check
        if real > nominal:
            line.over_budget += 1
            if line.worst is None or real - nominal > line.worst[0] - line.worst[1]:
                line.worst = (real, nominal)
    if task == "streaming":
        line.extra["memory"] = m[0].get("memory", [])
        line.extra["tokens"] = m[0].get("tokens")
        line.extra["beyond_trained"] = m[0].get("beyond_trained")
    return line


def _scores(group: list[dict]) -> dict[str, float]:
    """case_id -> quality of the ok rows that have one (the mean, should a case appear twice)."""
    by_case: dict[str, list[float]] = defaultdict(list)
    for row in group:
        if row["status"] == "ok" and row["quality"] is not None:
            by_case[row["case_id"]].append(float(row["quality"]))
    return {case: statistics.fmean(values) for case, values in by_case.items()}


def _references(scores: dict[tuple, dict[str, float]]) -> dict[tuple, dict[str, float]]:
    """(model, task, tokens) -> per-case scores of `full` (its budget-1.0 line where there are several)."""
    out: dict[tuple, dict[str, float]] = {}
    for (model, task, tokens, method, budget), mine in sorted(scores.items()):
        if method == REFERENCE and mine and ((model, task, tokens) not in out or budget == 1.0):
            out[(model, task, tokens)] = mine
    return out


@lru_cache(maxsize=8192)
def _interval(values: tuple[float, ...]) -> Interval:
    """Cached: the bootstrap is pure Python and `bench` summarises the same rows twice (table, then report)."""
    return interval(values)


@lru_cache(maxsize=8192)
def _compare(reference: tuple[float, ...], method: tuple[float, ...]) -> Paired:
    return compare(reference, method)


def _paired(reference: dict[str, float], mine: dict[str, float]) -> Paired | None:
    """mine - reference on the cases both have (None when they share none)."""
    common = sorted(set(reference) & set(mine))
    return _compare(tuple(reference[c] for c in common), tuple(mine[c] for c in common)) if common else None


def _add_stats(line: Line, mine: dict[str, float], reference: dict[str, float] | None) -> None:
    """The line's quality interval, its comparison with `full` and (RULER) its per-subtask means."""
    if not mine:
        return
    cases = sorted(mine)
    line.interval = _interval(tuple(mine[c] for c in cases))
    if line.method != REFERENCE and reference:
        line.vs_full = _paired(reference, mine)
    if line.task == "ruler":
        by_subtask: dict[str, list[float]] = defaultdict(list)
        for case in cases:
            by_subtask[case.split("/")[1]].append(mine[case])
        line.subtasks = {name: statistics.fmean(v) for name, v in sorted(by_subtask.items())}
        line.subtask_n = {name: len(v) for name, v in sorted(by_subtask.items())}


def method_label(row: dict) -> str:
    """The method, with a streaming case's policy options (positions, evict_every) so variants are never pooled."""
    options = [part for part in row["case_id"].split("/")[4:] if "=" in part] if row["task"] == "streaming" else []
    return f"{row['method']} ({', '.join(options)})" if options else row["method"]


def context_tokens(row: dict) -> int:
    """The context length of a row's case, from its id: needle/1024/..., fidelity/2048+128/..., streaming/24576/...,
    ruler/<subtask>/4096/..., code/4096/p17 (0 = the plain problem)."""
    parts = row["case_id"].split("/")
    return int(parts[2] if row["task"] == "ruler" else parts[1].split("+")[0])


def needle_by_length(rows: list[dict]) -> dict[tuple[str, float], dict[int, tuple[int, int]]]:
    """(method, budget) -> {context tokens: (hits, cases)} for the needle grid."""
    out: dict[tuple[str, float], dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in rows:
        if row["task"] != "needle" or row["status"] != "ok":
            continue
        tokens = context_tokens(row)
        cell = out[(row["method"], row["budget"])][tokens]
        cell[0] += int(row["quality"] or 0)
        cell[1] += 1
    return {k: {t: (h, n) for t, (h, n) in v.items()} for k, v in out.items()}


PROMPT_BUDGET = ("needle", "ruler", "code")  # tasks whose budget is a share of the prompt; they decode an answer
PEER_LAYER_AVERAGE = {"kvpress:pyramidkv"}  # peers whose budget is a per-layer average (layers differ)


def nominal_tokens(budget: float, base: int) -> int:
    """Tokens a budget allows out of `base`: ceil(ratio x base) for a ratio, else the token count; at most base
    (the rule of core.budget.Budget.tokens, which charges sinks and window to the budget)."""
    if budget == 1.0:
        return base
    keep = math.ceil(budget * base) if budget < 1 else int(budget)
    return max(0, min(base, keep))


def budget_base(row: dict) -> int | None:
    """The tokens a row's budget is a share of: the prompt (needle, ruler, code), the compressed context
    (fidelity), the eviction window (streaming)."""
    if row["task"] in PROMPT_BUDGET:
        return row["metrics"].get("prompt_tokens")
    if row["task"] == "fidelity":
        return context_tokens(row)
    found = re.search(r"/w(\d+)", row["case_id"])
    return int(found.group(1)) if found else None


def _policy_class(row: dict):
    """The tokensieve policy class of a row's method; None for peers and methods no longer registered."""
    from tokensieve.methods import REGISTRY

    if row["method"].startswith(PEER_PREFIX) or hf_cache.is_peer(row["method"]):
        return None
    return REGISTRY.get(split_storage(row["method"])[0])


def _dynamic(cls) -> bool:
    """A dynamic selector (attends each query to its own selection; nothing is evicted)."""
    from tokensieve.core.policy import DynamicPolicy

    return cls is not None and issubclass(cls, DynamicPolicy)


def decode_forwards(row: dict) -> int:
    """Single-token forwards after the prompt (each sees one more cached token): the answer's decode steps
    after the first token (needle, ruler, code), the fidelity continuation fed token by token (all but its last)."""
    if row["task"] in PROMPT_BUDGET:
        return max(int(row["metrics"].get("new_tokens") or 1) - 1, 0)
    if row["task"] == "fidelity":
        return max(int(row["case_id"].split("+")[1].split("/")[0]) - 1, 0)
    return 0


def real_tokens(row: dict) -> int | None:
    """The budget a row really used, in tokens, or None if the row cannot tell (older rows, peers without the
    field). Dynamic selectors: the most tokens one decode query attended in one layer (attended_tokens.max);
    KV policies: the most tokens one layer kept (max of kept_tokens), or the per-layer mean for a method whose
    budget is a per-layer average (pyramid allocation gives low layers more than the nominal budget)."""
    metrics = row["metrics"]
    cls = _policy_class(row)
    if _dynamic(cls):
        attended = metrics.get("attended_tokens")
        peak = attended.get("max") if isinstance(attended, dict) else None
        return int(peak) if peak is not None else None
    kept = [k for k in metrics.get("kept_tokens") or [] if k is not None]
    if not kept:
        return None
    averaged = row["method"] in PEER_LAYER_AVERAGE or getattr(cls, "allocation", "uniform") != "uniform"
    return math.ceil(statistics.fmean(kept)) if averaged else max(kept)


def budget_check(row: dict) -> tuple[int, int] | None:
    """(real, nominal) tokens of one ok row, or None where there is nothing to compare: `full` at any storage
    precision or transformers' quantized cache (no budget),
    a failed row, or a row without the fields (rows written before they existed). The nominal budget of a KV
    policy is a share of the prompt (window, for the stream); a dynamic selector's is a share of the tokens its
    query sees, which grow by one per decode step, so its nominal is taken at the last step."""
    if hf_cache.is_peer(row["method"]) or split_storage(row["method"])[0] == "full":
        return None  # it keeps every token: no budget applies
    if row["status"] != "ok" or row["budget"] is None:
        return None
    base, real = budget_base(row), real_tokens(row)
    if base is None or real is None:
        return None
    if _dynamic(_policy_class(row)):
        base += decode_forwards(row)
    return real, nominal_tokens(float(row["budget"]), int(base))
