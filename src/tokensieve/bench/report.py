"""`tokensieve report`: markdown tables, a Pareto PNG (matplotlib) and one self-contained HTML page (plotly, JS
inline) from the rows of a bench database.

RULER and code get one section per (model, task, context length): quality with its 95 % interval, the paired
comparison with `full` on the same cases, a verdict that only says worse/better when the difference is significant,
and a "What this shows" paragraph generated from those numbers. The HTML filters sections by model, task, length."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from tokensieve.bench.stats import Paired, format_interval, verdict
from tokensieve.bench.store import Store
from tokensieve.bench.summary import REFERENCE, Line, latest_version, needle_by_length, summarise

QUALITY = {"needle": "needle accuracy", "fidelity": "top-1 agreement with full cache", "ruler": "RULER recall",
           "code": "HumanEval tests passed"}
KV = ("kv_frac", "kept KV (fraction of full)")
COSTS = {"needle": (KV, ("decode_tok_s", "decode tokens/s (median)")),
         "fidelity": (KV, ("prefill_s", "prefill seconds (median)")), "ruler": (KV,), "code": (KV,)}
PROMPT_TASKS = ("ruler", "code")  # sectioned per (model, task, length) and compared with `full`
FILTERS = ("model", "task", "length")  # the HTML filter bar: data-model / data-task / data-length


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


def _f(value, fmt: str = ".3g") -> str:
    return "—" if value is None else format(value, fmt)


def _attrs(ln: Line) -> dict[str, str]:
    return {"model": ln.model, "task": ln.task, "length": str(ln.tokens)}


def _length(task: str, tokens: int) -> str:
    return "plain HumanEval (no added context)" if task == "code" and tokens == 0 else f"{tokens} tokens"


def _order(ln: Line) -> tuple:
    """`full` first, then tokensieve methods, then kvpress peers; by budget within a method."""
    return ln.method != REFERENCE, ln.family == "kvpress", ln.method, ln.budget


def quality_text(ln: Line) -> str:
    """'62% [48–74]': the mean per-case quality (a rate, or RULER's mean recall) with its 95 % interval."""
    return format_interval(ln.interval) if ln.interval else _f(ln.quality)


def _points(x: float) -> str:
    """A difference of rates in signed percentage points: '−12', '+3', '0', '−0.4' under one point."""
    v = x * 100
    text = f"{abs(v):.0f}" if abs(v) >= 1 else f"{abs(v):.1f}"
    return "0" if float(text) == 0 else ("+" if v > 0 else "−") + text


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def _diff(d: Paired) -> str:
    return f"{_points(d.diff)} [{_points(d.low)}, {_points(d.high)}]"


def vs_full_text(ln: Line) -> str:
    """'−12 [−20, −4] p=0.003' (points, 95 % interval, paired p), with n when fewer cases were shared with full."""
    if ln.method == REFERENCE:
        return "reference"
    d = ln.vs_full
    if d is None:
        return "—"
    shared = f" (n={d.n})" if ln.interval and d.n != ln.interval.n else ""
    return f"{_diff(d)} {_p(d.p)}{shared}"


def verdict_text(ln: Line) -> str:
    return verdict(ln.vs_full) if ln.vs_full is not None and ln.method != REFERENCE else "—"


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
        chosen = sorted((ln for ln in lines if ln.task == task), key=lambda ln: (ln.model, ln.tokens, *_order(ln)))
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
    chosen = sorted(chosen, key=_order)
    body = [[ln.method, f"{ln.budget:g}", str(ln.n), quality_text(ln), vs_full_text(ln), verdict_text(ln),
             _f(ln.kv_frac, ".2f"), _f(ln.kv_mb, ".1f"), _f(ln.prefill_s, ".2f"), _f(ln.decode_tok_s, ".1f"),
             _f(ln.peak_rss_mb, ".0f"), _over(ln), _failed(ln)] for ln in chosen]
    return Section(f"{task} · {model} · {_length(task, tokens)}", [*PROMPT_HEAD, OVER, "failed"], body,
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
    for ln in sorted(chosen, key=_order):
        if ln.method == REFERENCE:
            continue
        name, d = f"{ln.method} @ {ln.budget:g}", ln.vs_full
        if d is None:
            alone.append(name)
        elif d.significant:
            (better if d.diff > 0 else worse).append(f"{name} ({_points(d.diff)} points "
                                                     f"[{_points(d.low)}, {_points(d.high)}], {_p(d.p)})")
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
    return " ".join(parts)


def _subtask_section(model: str, tokens: int, chosen: list[Line]) -> Section:
    """Method@budget x RULER subtask: mean quality per subtask (a few cases each: read them as a profile)."""
    chosen = sorted((ln for ln in chosen if ln.subtasks), key=_order)
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
    body = [[ln.model, ln.method, f"{ln.budget:g}", str(ln.extra.get("tokens", "—")), _f(ln.extra.get("ppl")),
             _f(ln.kv_mb, ".1f"), _f((ln.extra.get("memory") or [{}])[0].get("rss_mb"), ".0f"),
             _f(ln.peak_rss_mb, ".0f"), _f(ln.extra.get("tok_s"), ".1f"), _over(ln), _failed(ln)]
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
               _f(ln.kv_frac, ".2f"), _f(ln.kv_mb, ".1f"), _f(ln.prefill_s, ".2f"), _f(ln.decode_tok_s, ".1f"),
               _f(ln.peak_rss_mb, ".0f"), _f(ln.gflops, ".1f"), _over(ln), _failed(ln)]
        if task == "fidelity":
            row[6:6] = [_f(ln.extra.get("kl")), _f(ln.extra.get("ppl_ratio"), ".3f")]
        body.append(row)
    return head, body


def _failed(ln: Line) -> str:
    return str(ln.failed) + (f" ({ln.error})" if ln.error else "")


OVER = "over budget"
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


def _over(ln: Line) -> str:
    if not ln.checked:
        return "—"
    if not ln.over_budget:
        return "no"
    real, nominal = ln.worst
    return f"⚠ {ln.over_budget}/{ln.checked} ({real} > {nominal} tok)"


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


def _data(attrs: dict[str, str]) -> str:
    """data-model="…" data-task="…" data-length="…" (the keys the filter bar reads)."""
    return "".join(f' data-{k}="{html.escape(v)}"' for k, v in attrs.items() if v)


def _html_table(head: list[str], body: list[list[str]], row_attrs: list[dict[str, str]] | None = None) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    attrs = row_attrs or [{}] * len(body)
    trs = "".join(f"<tr{_data(a)}>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                  for r, a in zip(body, attrs, strict=True))
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _html_section(s: Section) -> str:
    text = f"<p class='shows'><b>What this shows.</b> {html.escape(s.text)}</p>" if s.text else ""
    text += f"<p class='shows'>{html.escape(s.note)}</p>" if s.note else ""
    return (f"<section class='filterable'{_data(s.attrs)}><h2>{html.escape(s.title)}</h2>{text}"
            f"{_html_table(s.head, s.body, s.row_attrs)}</section>")


def _filter_bar(lines: list[Line]) -> str:
    """Three selects, each 'all' plus the values present; FILTER_JS applies them (and ?model=…&task=…&length=…)."""
    values = {"model": sorted({ln.model for ln in lines}), "task": sorted({ln.task for ln in lines}),
              "length": [str(t) for t in sorted({ln.tokens for ln in lines})]}
    selects = []
    for key in FILTERS:
        options = "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values[key])
        selects.append(f'<label>{key} <select id="filter-{key}"><option value="all">all</option>{options}'
                       "</select></label>")
    return f"<div id='filters'>{' '.join(selects)} <small>(tables and charts follow the filters)</small></div>"


FILTER_JS = """(function () {
  const keys = ["model", "task", "length"];
  const fits = (el, f) => keys.every(k => f[k] === "all" || !el.dataset[k] || el.dataset[k] === f[k]);
  function apply() {
    const f = {};
    keys.forEach(k => { f[k] = document.getElementById("filter-" + k).value; });
    document.querySelectorAll(".filterable").forEach(el => {
      const rows = [...el.querySelectorAll("tr[data-task]")];
      rows.forEach(r => { r.style.display = fits(r, f) ? "" : "none"; });
      const on = fits(el, f) && (!rows.length || rows.some(r => r.style.display !== "none"));
      el.style.display = on ? "" : "none";
      if (on && window.Plotly) el.querySelectorAll(".js-plotly-plot").forEach(p => Plotly.Plots.resize(p));
    });
  }
  const query = new URLSearchParams(location.search);
  keys.forEach(k => {
    const select = document.getElementById("filter-" + k);
    const wanted = query.get(k);
    if (wanted !== null && [...select.options].some(o => o.value === wanted)) select.value = wanted;
    select.addEventListener("change", apply);
  });
  apply();
})();"""


def pareto(points: list[tuple[float, float]], higher_x: bool = False) -> list[tuple[float, float]]:
    """Points not dominated (lower cost, or higher x when `higher_x` such as tokens/s; higher quality),
    ordered from the best x to the worst."""
    front, best = [], float("-inf")
    for x, quality in sorted(points, key=lambda p: (-p[0] if higher_x else p[0], -p[1])):
        if quality > best:
            front.append((x, quality))
            best = quality
    return front


HIGHER_IS_BETTER = {"decode_tok_s"}
PANEL_ORDER = ("ruler", "code", "needle", "fidelity")
MAX_PNG_PANELS = 12  # the PNG stays readable; the HTML has every panel


@dataclass
class Panel:
    model: str
    task: str
    tokens: int
    attr: str  # the cost on the x axis
    label: str
    lines: list[Line]

    @property
    def title(self) -> str:
        return f"{self.task} · {self.model} · {_length(self.task, self.tokens)}"


def _panels(lines: list[Line]) -> list[Panel]:
    """Quality against each cost of its task, per (model, task, length): RULER and code first."""
    groups: dict[tuple, list[Line]] = {}
    for ln in lines:
        if ln.task in COSTS and ln.quality is not None:
            groups.setdefault((PANEL_ORDER.index(ln.task), ln.model, ln.task, ln.tokens), []).append(ln)
    panels = []
    for (_, model, task, tokens), chosen in sorted(groups.items()):
        for attr, label in COSTS[task]:
            mine = [ln for ln in chosen if getattr(ln, attr) is not None]
            if mine:
                panels.append(Panel(model, task, tokens, attr, label, mine))
    return panels


def _png_panels(panels: list[Panel]) -> list[Panel]:
    """RULER and code panels when there are any (needle and fidelity otherwise), at most MAX_PNG_PANELS."""
    return ([p for p in panels if p.task in PROMPT_TASKS] or panels)[:MAX_PNG_PANELS]


def _errors(mine: list[Line]) -> tuple[list[float], list[float]]:
    """(below, above) each point: the distance to its interval's ends (0 without an interval)."""
    below = [max(0.0, ln.quality - ln.interval.low) if ln.interval else 0.0 for ln in mine]
    above = [max(0.0, ln.interval.high - ln.quality) if ln.interval else 0.0 for ln in mine]
    return below, above


def _streams(lines: list[Line]) -> list[tuple[str, list[int], list[float], list[float]]]:
    """(label, tokens read, kept KV MB, RSS MB) sampled along each streaming run."""
    out = []
    for ln in lines:
        trace = ln.extra.get("memory") if ln.task == "streaming" else None
        if trace:
            label = ln.method if ln.method == "full" else f"{ln.method} @ {ln.budget:g}"
            out.append((label, [p["tokens"] for p in trace], [p["kv_bytes"] / 2**20 for p in trace],
                        [p["rss_mb"] for p in trace]))
    return out


def png(lines: list[Line], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels, streams = _png_panels(_panels(lines)), _streams(lines)
    if not panels and not streams:
        return
    cols = 2
    rows_n = (len(panels) + bool(streams) + 1) // 2
    fig, axes = plt.subplots(rows_n, cols, figsize=(12, 4.5 * rows_n), squeeze=False)
    methods = sorted({ln.method for p in panels for ln in p.lines})
    palette = [*plt.cm.tab20.colors, *plt.cm.Dark2.colors, *plt.cm.Set1.colors]  # 37 distinct colours
    colors = {m: palette[i % len(palette)] for i, m in enumerate(methods)}
    for ax, panel in zip(axes.flat, panels, strict=False):
        attr = panel.attr
        for method in methods:
            mine = [ln for ln in panel.lines if ln.method == method]
            if mine:
                marker = "*" if method == "full" else ("s" if method.startswith("kvpress:") else "o")
                ax.errorbar([getattr(ln, attr) for ln in mine], [ln.quality for ln in mine], yerr=_errors(mine),
                            fmt=marker, label=method, color=colors[method], markersize=12 if method == "full" else 6,
                            elinewidth=0.8, capsize=2, alpha=0.9)
                for ln in mine:  # which budget a point is
                    if method != "full":
                        ax.annotate(f"{ln.budget:g}", (getattr(ln, attr), ln.quality), fontsize=6, alpha=0.6,
                                    xytext=(4, 3), textcoords="offset points")
        front = pareto([(getattr(ln, attr), ln.quality) for ln in panel.lines], attr in HIGHER_IS_BETTER)
        if front:
            ax.step(*zip(*front, strict=True), where="post", color="grey", lw=1, ls="--", label="Pareto front")
        if panel.task in PROMPT_TASKS:
            ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(panel.label)
        ax.set_ylabel(f"{QUALITY[panel.task]} (95 % CI)")
        ax.set_title(f"{panel.title}: quality vs {panel.label.split(' (')[0]}", fontsize=10)
        ax.grid(alpha=0.3)
    if streams:
        ax = axes.flat[len(panels)]
        for label, tokens, kv_mb, _ in streams:
            ax.plot(tokens, kv_mb, label=label)
        ax.set_xlabel("stream tokens read")
        ax.set_ylabel("kept KV MB")
        ax.set_title("streaming: KV memory along the stream")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) + bool(streams):]:
        ax.axis("off")
    legend: dict[str, object] = {}
    for ax in list(axes.flat)[: len(panels)]:  # the streaming panel has its own legend
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(name, handle)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(6, len(legend)), fontsize=8)
    fig.tight_layout(rect=(0, 0.04 + 0.012 * (len(legend) // 6), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel_figure(panel: Panel, color: dict[str, str]):
    """One plotly chart: quality (95 % error bars) against the panel's cost, with the Pareto front."""
    import plotly.graph_objects as go

    fig = go.Figure()
    attr = panel.attr
    for method in sorted({ln.method for ln in panel.lines}):
        mine = [ln for ln in panel.lines if ln.method == method]
        below, above = _errors(mine)
        fig.add_trace(go.Scatter(
            x=[getattr(ln, attr) for ln in mine], y=[ln.quality for ln in mine], mode="markers", name=method,
            error_y={"type": "data", "array": above, "arrayminus": below, "visible": True, "thickness": 1},
            marker={"symbol": "star" if method == "full" else ("square" if ":" in method else "circle"),
                    "size": 14 if method == "full" else 9, "color": color[method]},
            text=[f"{method} @ {ln.budget:g}<br>{quality_text(ln)}, n={ln.n}, failed={ln.failed}"
                  f"<br>vs full: {vs_full_text(ln)} ({verdict_text(ln)})" for ln in mine],
            hovertemplate="%{text}<br>x=%{x:.3g}<extra></extra>"))
    front = pareto([(getattr(ln, attr), ln.quality) for ln in panel.lines], attr in HIGHER_IS_BETTER)
    fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines", name="Pareto front",
                             line={"shape": "hv", "dash": "dash", "color": "grey"}))
    fig.update_layout(title={"text": f"{panel.title}: quality vs {panel.label.split(' (')[0]}", "font": {"size": 13}},
                      xaxis_title=panel.label, yaxis_title=f"{QUALITY[panel.task]} (95 % CI)", height=420,
                      template="plotly_white", legend={"font": {"size": 9}}, margin={"l": 50, "r": 10, "t": 40})
    if panel.task in PROMPT_TASKS:  # rates: the same 0-1 scale in every panel
        fig.update_yaxes(range=[-0.03, 1.03])
    return fig


def html_page(lines: list[Line], rows: list[dict], path: Path, title: str, command: str) -> None:
    import plotly.colors as pc
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    panels, streams = _panels(lines), _streams(lines)
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p><code>{html.escape(command)}</code></p>", _filter_bar(lines)]
    if panels:
        every = sorted({ln.method for p in panels for ln in p.lines})
        palette = pc.qualitative.Dark24
        color = {m: palette[i % len(palette)] for i, m in enumerate(every)}
        charts = [f"<div class='filterable'{_data({'model': p.model, 'task': p.task, 'length': str(p.tokens)})}>"
                  + pio.to_html(_panel_figure(p, color), include_plotlyjs=False, full_html=False,
                                div_id=f"panel-{i}", config={"responsive": True}) + "</div>"
                  for i, p in enumerate(panels)]
        parts.append(f'<div id="pareto" class="panels">{"".join(charts)}</div>')
    if streams:
        fig = go.Figure([go.Scatter(x=tokens, y=kv_mb, mode="lines+markers", name=label,
                                    customdata=rss, hovertemplate="%{x} tokens<br>KV %{y:.1f} MB"
                                    "<br>RSS %{customdata:.0f} MB<extra>" + label + "</extra>")
                         for label, tokens, kv_mb, rss in streams])
        fig.update_layout(title="streaming: KV memory along the stream", xaxis_title="stream tokens read",
                          yaxis_title="kept KV MB", template="plotly_white", height=420)
        parts.append("<div class='filterable' data-task='streaming'>"
                     + pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id="streaming") + "</div>")
    parts += [_html_section(s) for s in sections(lines, rows)]
    parts += [f"<p>{html.escape(note)}</p>" for note in footnotes(lines)]
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}"
             "#filters{position:sticky;top:0;background:#fff;padding:6px 0;z-index:10}#filters label{margin-right:1em}"
             ".panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:8px}"
             ".shows{max-width:70em}")
    plotly_js = f"<script type='text/javascript'>{get_plotlyjs()}</script>" if panels or streams else ""
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style>{plotly_js}</head><body>{''.join(parts)}<script>{FILTER_JS}</script>"
            "</body></html>")
    path.write_text(page, encoding="utf-8")


def _generated_by(command: str, note: str) -> str:
    """The command line that wrote the report. The note is printed once, as the paragraph under it; the command
    only says there was one (a `--note …` in `command` is cut, whatever the caller passed)."""
    shown = (command or "tokensieve report").split(" --note ")[0]
    return f"Generated by `{shown} --note …` (the note is the paragraph below)" if note else f"Generated by `{shown}`"


def write(db: str | Path, out: str | Path, keys: list[str] | None = None, command: str = "",
          note: str = "") -> dict[str, Path]:
    """Write RESULTS.md, pareto.png and results.html into `out` from the rows of `db`; returns the paths."""
    store = Store(db)
    rows = latest_version(store.rows(keys))
    bench_command = store.meta("command") or "(unknown)"
    store.close()
    lines = summarise(rows)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": folder / "RESULTS.md", "png": folder / "pareto.png", "html": folder / "results.html"}
    title = "tokensieve benchmark: quality kept vs cost"
    header = (f"# {title}\n\n{_generated_by(command, note)} from a sweep run with:\n\n"
              f"```\n{bench_command}\n```\n\n"
              "Every number below was produced by that run (quality on real text; cost measured on this machine: "
              "peak RSS is the kernel's high-water mark when a cell set a new process peak, else a 5 ms RSS "
              "sampler; timings as medians). `full` is the unmodified cache. "
              "Methods named `kvpress:*` are NVIDIA kvpress presses run on the same prompt token ids.\n\n"
              + (f"{note}\n\n" if note else "") + "![Pareto](pareto.png)\n\n")
    paths["markdown"].write_text(header + markdown(lines, rows), encoding="utf-8")
    png(lines, paths["png"])
    html_page(lines, rows, paths["html"], title, bench_command)
    return paths
