"""The report's tables: one `Section` per table (RULER and code per model, task and length with the generated
"What this shows" paragraph, RULER subtasks, needle, fidelity, streaming), the footnotes they need, and their
markdown rendering. The HTML page (`page`) renders the same sections."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokensieve.bench.report.formatting import (
    OVER,
    PROMPT_TASKS,
    QUALITY,
    failed_text,
    length_text,
    line_order,
    over_text,
    p_text,
    quality_text,
    show,
    signed,
    verdict_text,
    vs_full_text,
)
from tokensieve.bench.stats import format_interval
from tokensieve.bench.summary import REFERENCE, Line, needle_by_length


@dataclass
class Section:
    """One table of the report; markdown and HTML render the same sections."""
    title: str
    head: list[str]
    body: list[list[str]]
    attrs: dict[str, str] = field(default_factory=dict)  # model / task / length the whole section is about
    row_attrs: list[dict[str, str]] | None = None  # ... or per row, for tables spanning models and lengths
    text: str = ""  # "What this shows"
    note: str = ""  # how to read the table


def _attrs(ln: Line) -> dict[str, str]:
    return {"model": ln.model, "task": ln.task, "length": str(ln.tokens)}


def sections(lines: list[Line], rows: list[dict]) -> list[Section]:
    """Every table: RULER and code per (model, task, length), each RULER length followed by its subtasks; then
    the needle, fidelity and streaming tables."""
    out = []
    groups: dict[tuple, list[Line]] = {}
    for ln in lines:
        if ln.task in PROMPT_TASKS:
            groups.setdefault((PROMPT_TASKS.index(ln.task), ln.model, ln.tokens), []).append(ln)
    for (_, model, tokens), chosen in sorted(groups.items()):
        out.append(_prompt_section(model, chosen[0].task, tokens, chosen))
        if chosen[0].task == "ruler" and any(ln.subtasks for ln in chosen):
            out.append(_subtask_section(model, tokens, chosen))
    for task in ("needle", "fidelity", "streaming"):
        chosen = sorted((ln for ln in lines if ln.task == task), key=lambda ln: (ln.model, ln.tokens, *line_order(ln)))
        if chosen:
            head, body = _streaming(chosen) if task == "streaming" else _quality(task, chosen)
            out.append(Section(task, head, body, {"task": task}, [_attrs(ln) for ln in chosen]))
    by_len = needle_by_length(rows)
    if by_len:
        lengths = sorted({t for v in by_len.values() for t in v})
        body = [[m, f"{b:g}"] + [f"{v[t][0]}/{v[t][1]}" if t in v else "—" for t in lengths]
                for (m, b), v in sorted(by_len.items())]
        out.append(Section("needle hits by context length (same prompts for every method)",
                           ["method", "budget"] + [f"{t} tok" for t in lengths], body, {"task": "needle"}))
    return out


PROMPT_HEAD = ["method", "budget", "cases", "quality [95 % CI]", "vs full, points [95 % CI]", "verdict", "kept KV",
               "KV MB", "prefill s", "decode tok/s", "peak RSS MB"]


def _prompt_section(model: str, task: str, tokens: int, chosen: list[Line]) -> Section:
    chosen = sorted(chosen, key=line_order)
    body = [[ln.method, f"{ln.budget:g}", str(ln.n), quality_text(ln), vs_full_text(ln), verdict_text(ln),
             show(ln.kv_frac, ".2f"), show(ln.kv_mb, ".1f"), show(ln.prefill_s, ".2f"), show(ln.decode_tok_s, ".1f"),
             show(ln.peak_rss_mb, ".0f"), over_text(ln), failed_text(ln)] for ln in chosen]
    return Section(f"{task} · {model} · {length_text(task, tokens)}", [*PROMPT_HEAD, OVER, "failed"], body,
                   {"model": model, "task": task, "length": str(tokens)}, text=what_this_shows(chosen))


def what_this_shows(chosen: list[Line]) -> str:
    """One paragraph from the numbers: full's score, then only the differences that are significant (paired test
    p < 0.05 and a 95 % interval excluding 0); everything else is 'not distinguishable at this n'."""
    first = chosen[0]
    plain = first.task == "code" and first.tokens == 0
    where = f"On plain HumanEval with {first.model}" if plain else f"At {first.tokens} tokens on {first.model}"
    ref = next((ln for ln in chosen if ln.method == REFERENCE and ln.interval), None)
    if ref is None:
        return f"{where} there is no `full` run to compare with, so no difference is stated."
    worse, better, same, alone = [], [], [], []
    for ln in sorted(chosen, key=line_order):
        if ln.method == REFERENCE:
            continue
        name, d = f"{ln.method} @ {ln.budget:g}", ln.vs_full
        if d is None:
            alone.append(name)
        elif d.significant:
            (better if d.diff > 0 else worse).append(f"{name} ({signed(d.diff)} points "
                                                     f"[{signed(d.low)}, {signed(d.high)}], {p_text(d.p)})")
        else:
            same.append(name)
    parts = [f"{where}, full scores {format_interval(ref.interval)} (n={ref.interval.n})."]
    for label, names in (("Significantly worse than full", worse), ("Significantly better than full", better),
                         ("Not distinguishable from full at this n", same),
                         ("Not compared (no ok case in common with full)", alone)):
        if names:
            parts.append(f"{label}: {', '.join(names)}.")
    if len(parts) == 1:
        parts.append("No other method ran here.")
    return " ".join(parts + _against_peers(chosen))


def _against_peers(chosen: list[Line]) -> list[str]:
    """Ours against kvpress's press of the same method and budget, paired on the cases both have."""
    heads = [(f"{ln.method} @ {ln.budget:g}" + ("" if ln.peer.endswith(":" + ln.method) else f" (against {ln.peer})"),
              ln.vs_peer) for ln in sorted(chosen, key=line_order) if ln.vs_peer]
    if not heads:
        return []
    said = [f"{name} {signed(d.diff)} points [{signed(d.low)}, {signed(d.high)}], {p_text(d.p)}, n={d.n}"
            f"{'' if d.significant else ' (not distinguishable)'}" for name, d in heads]
    return [f"Ours minus kvpress's press of the same method and budget, on the same cases: {'; '.join(said)}."]


def _subtask_section(model: str, tokens: int, chosen: list[Line]) -> Section:
    """Method@budget x RULER subtask: mean quality per subtask (a few cases each: read them as a profile)."""
    chosen = sorted((ln for ln in chosen if ln.subtasks), key=line_order)
    names = sorted({name for ln in chosen for name in ln.subtasks})
    counts = {name: max(ln.subtask_n.get(name, 0) for ln in chosen) for name in names}

    def cell(ln: Line, name: str) -> str:
        if name not in ln.subtasks:
            return "—"
        short = f" ({ln.subtask_n[name]})" if ln.subtask_n[name] != counts[name] else ""
        return f"{ln.subtasks[name] * 100:.0f}%{short}"

    body = [[ln.method, f"{ln.budget:g}"] + [cell(ln, name) for name in names] for ln in chosen]
    return Section(f"ruler subtasks · {model} · {tokens} tokens", ["method", "budget"]
                   + [f"{name} (n={counts[name]})" for name in names], body,
                   {"model": model, "task": "ruler", "length": str(tokens)},
                   note="Mean score per subtask over its few cases (a cell's own n in brackets where it ran fewer); "
                        "too few cases for a test per subtask.")


def _streaming(chosen: list[Line]) -> tuple[list[str], list[list[str]]]:
    head = ["model", "method", "budget", "tokens", "ppl", "kept KV MB (end)", "RSS MB (first sample)",
            "peak RSS MB", "tok/s", OVER, "failed"]
    body = [[ln.model, ln.method, f"{ln.budget:g}", str(ln.extra.get("tokens", "—")), show(ln.extra.get("ppl")),
             show(ln.kv_mb, ".1f"), show((ln.extra.get("memory") or [{}])[0].get("rss_mb"), ".0f"),
             show(ln.peak_rss_mb, ".0f"), show(ln.extra.get("tok_s"), ".1f"), over_text(ln), failed_text(ln)]
            for ln in chosen]
    return head, body


def _quality(task: str, chosen: list[Line]) -> tuple[list[str], list[list[str]]]:
    head = ["model", "tokens", "method", "budget", "cases", f"{QUALITY[task]} [95 % CI]", "kept KV", "KV MB",
            "prefill s", "decode tok/s", "peak RSS MB", "attn GFLOPs", OVER, "failed"]
    if task == "fidelity":
        head[6:6] = ["KL", "ppl ratio"]
    body = []
    for ln in chosen:
        row = [ln.model, str(ln.tokens), ln.method, f"{ln.budget:g}", str(ln.n), quality_text(ln),
               show(ln.kv_frac, ".2f"), show(ln.kv_mb, ".1f"), show(ln.prefill_s, ".2f"), show(ln.decode_tok_s, ".1f"),
               show(ln.peak_rss_mb, ".0f"), show(ln.gflops, ".1f"), over_text(ln), failed_text(ln)]
        if task == "fidelity":
            row[6:6] = [show(ln.extra.get("kl")), show(ln.extra.get("ppl_ratio"), ".3f")]
        body.append(row)
    return head, body


OVER_NOTE = ("⚠ over budget: in that many of the checked cases the method used more tokens than its nominal "
             "budget. KV policies: the most tokens one layer kept (the per-layer mean for pyramid budgets) against "
             "budget × prompt tokens (× the window for the stream); dynamic selectors: the most tokens one decode "
             "query attended in one layer against budget × the tokens that query saw. The worst case is shown as "
             "used > nominal; — = not checkable (`full`, or rows written before the counters existed).")
STATS_NOTE = ("quality [95 % CI]: the mean per-case score with its 95 % interval (Wilson for pass/fail rates, a "
              "percentile bootstrap of the mean for fractional scores such as RULER's recall). vs full: the method "
              "minus `full` in percentage points on the cases both ran, with a 95 % interval and the two-sided p of "
              "a paired test (exact McNemar with Newcombe's interval for pass/fail; otherwise a sign-flip test with "
              "a paired bootstrap interval). verdict: worse or better only when p < 0.05 and the interval excludes "
              "0; n.s. means not distinguishable at this n, not shown to be equal.")


def footnotes(lines: list[Line]) -> list[str]:
    """Notes that only appear when a table needs them."""
    notes = [STATS_NOTE] if any(ln.task in PROMPT_TASKS for ln in lines) else []
    return notes + ([OVER_NOTE] if any(ln.over_budget for ln in lines) else [])


def markdown(lines: list[Line], rows: list[dict]) -> str:
    parts = [f"### {s.title}\n\n" + (f"**What this shows.** {s.text}\n\n" if s.text else "")
             + (f"{s.note}\n\n" if s.note else "") + _table(s.head, s.body) for s in sections(lines, rows)]
    return "\n\n".join(parts + footnotes(lines)) + "\n"


def _table(head: list[str], body: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in body]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in esc])
