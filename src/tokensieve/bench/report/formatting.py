"""How one benchmark line becomes one table cell: the quality and cost labels per task, and the formatting of
numbers, 95 % intervals, paired differences with `full`, verdicts, over-budget and failure counts. Shared by the
tables (`tables`), the charts (`plots`) and the HTML page (`page`)."""

from __future__ import annotations

from tokensieve.bench.stats import Paired, format_interval, verdict
from tokensieve.bench.summary import REFERENCE, Line

QUALITY = {"needle": "needle accuracy", "fidelity": "top-1 agreement with full cache", "ruler": "RULER recall",
           "code": "HumanEval tests passed"}
KV = ("kv_frac", "kept KV (fraction of full)")
COSTS = {"needle": (KV, ("decode_tok_s", "decode tokens/s (median)")),
         "fidelity": (KV, ("prefill_s", "prefill seconds (median)")), "ruler": (KV,), "code": (KV,)}
PROMPT_TASKS = ("ruler", "code")  # sectioned per (model, task, length) and compared with `full`


def show(value, fmt: str = ".3g") -> str:
    return "—" if value is None else format(value, fmt)


def length_text(task: str, tokens: int) -> str:
    return "plain HumanEval (no added context)" if task == "code" and tokens == 0 else f"{tokens} tokens"


def line_order(ln: Line) -> tuple:
    """`full` first, then tokensieve methods, then kvpress peers; by budget within a method."""
    return ln.method != REFERENCE, ln.family == "kvpress", ln.method, ln.budget


def quality_text(ln: Line) -> str:
    """'62% [48–74]': the mean per-case quality (a rate, or RULER's mean recall) with its 95 % interval."""
    return format_interval(ln.interval) if ln.interval else show(ln.quality)


def signed(x: float) -> str:
    """A difference of rates in signed percentage points: '−12', '+3', '0', '−0.4' under one point."""
    v = x * 100
    text = f"{abs(v):.0f}" if abs(v) >= 1 else f"{abs(v):.1f}"
    return "0" if float(text) == 0 else ("+" if v > 0 else "−") + text


def p_text(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def _diff(d: Paired) -> str:
    return f"{signed(d.diff)} [{signed(d.low)}, {signed(d.high)}]"


def vs_full_text(ln: Line) -> str:
    """'−12 [−20, −4] p=0.003' (points, 95 % interval, paired p), with n when fewer cases were shared with full."""
    if ln.method == REFERENCE:
        return "reference"
    d = ln.vs_full
    if d is None:
        return "—"
    shared = f" (n={d.n})" if ln.interval and d.n != ln.interval.n else ""
    return f"{_diff(d)} {p_text(d.p)}{shared}"


def verdict_text(ln: Line) -> str:
    return verdict(ln.vs_full) if ln.vs_full is not None and ln.method != REFERENCE else "—"


def failed_text(ln: Line) -> str:
    return str(ln.failed) + (f" ({ln.error})" if ln.error else "")


OVER = "over budget"


def over_text(ln: Line) -> str:
    if not ln.checked:
        return "—"
    if not ln.over_budget:
        return "no"
    real, nominal = ln.worst
    return f"⚠ {ln.over_budget}/{ln.checked} ({real} > {nominal} tok)"
