"""`tokensieve report`: a markdown table, a Pareto PNG (matplotlib) and one self-contained HTML page
(plotly, JS inline) from the rows of a bench database."""

from __future__ import annotations

import html
from pathlib import Path

from tokensieve.bench.store import Store
from tokensieve.bench.summary import Line, latest_version, needle_by_length, summarise

QUALITY = {"needle": "needle accuracy", "fidelity": "top-1 agreement with full cache"}
COSTS = {"needle": (("kv_frac", "kept KV (fraction of full)"), ("decode_tok_s", "decode tokens/s (median)")),
         "fidelity": (("kv_frac", "kept KV (fraction of full)"), ("prefill_s", "prefill seconds (median)"))}


def _f(value, fmt: str = ".3g") -> str:
    return "—" if value is None else format(value, fmt)


def sections(lines: list[Line], rows: list[dict]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, body) of every table; markdown and HTML render the same sections."""
    out = []
    for task in ("needle", "fidelity", "streaming"):
        chosen = [ln for ln in lines if ln.task == task]
        if chosen:
            head, body = (_streaming(chosen) if task == "streaming" else _quality(task, chosen))
            out.append((task, head, body))
    by_len = needle_by_length(rows)
    if by_len:
        lengths = sorted({t for v in by_len.values() for t in v})
        body = [[m, f"{b:g}"] + [f"{v[t][0]}/{v[t][1]}" if t in v else "—" for t in lengths]
                for (m, b), v in sorted(by_len.items())]
        out.append(("needle hits by context length (same prompts for every method)",
                    ["method", "budget"] + [f"{t} tok" for t in lengths], body))
    return out


def _streaming(chosen: list[Line]) -> tuple[list[str], list[list[str]]]:
    head = ["model", "method", "budget", "tokens", "ppl", "kept KV MB (end)", "RSS MB (first sample)",
            "peak RSS MB", "tok/s", OVER, "failed"]
    body = [[ln.model, ln.method, f"{ln.budget:g}", str(ln.extra.get("tokens", "—")), _f(ln.extra.get("ppl")),
             _f(ln.kv_mb, ".1f"), _f((ln.extra.get("memory") or [{}])[0].get("rss_mb"), ".0f"),
             _f(ln.peak_rss_mb, ".0f"), _f(ln.extra.get("tok_s"), ".1f"), _over(ln), _failed(ln)]
            for ln in chosen]
    return head, body


def _quality(task: str, chosen: list[Line]) -> tuple[list[str], list[list[str]]]:
    head = ["model", "tokens", "method", "budget", "cases", QUALITY[task], "kept KV", "KV MB", "prefill s",
            "decode tok/s", "peak RSS MB", "attn GFLOPs", OVER, "failed"]
    if task == "fidelity":
        head[6:6] = ["KL", "ppl ratio"]
    body = []
    for ln in sorted(chosen, key=lambda ln: (ln.model, ln.tokens, ln.method, ln.budget)):
        row = [ln.model, str(ln.tokens), ln.method, f"{ln.budget:g}", str(ln.n), _f(ln.quality),
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


def _over(ln: Line) -> str:
    if not ln.checked:
        return "—"
    if not ln.over_budget:
        return "no"
    real, nominal = ln.worst
    return f"⚠ {ln.over_budget}/{ln.checked} ({real} > {nominal} tok)"


def footnotes(lines: list[Line]) -> list[str]:
    """Notes that only appear when a table needs them."""
    return [OVER_NOTE] if any(ln.over_budget for ln in lines) else []


def markdown(lines: list[Line], rows: list[dict]) -> str:
    parts = [f"### {title}\n\n" + _table(head, body) for title, head, body in sections(lines, rows)]
    return "\n\n".join(parts + footnotes(lines)) + "\n"


def _table(head: list[str], body: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in body]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in esc])


def _html_table(head: list[str], body: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


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


def _panels(lines: list[Line]) -> list[tuple[str, str, str, list[Line]]]:
    """(title, cost attribute, axis label, lines): per task and context length, quality against each cost."""
    panels = []
    for task in ("needle", "fidelity"):
        for tokens in sorted({ln.tokens for ln in lines if ln.task == task}):
            chosen = [ln for ln in lines if ln.task == task and ln.tokens == tokens and ln.quality is not None]
            for attr, label in COSTS[task]:
                mine = [ln for ln in chosen if getattr(ln, attr) is not None]
                if mine:
                    panels.append((f"{task} at {tokens} tokens", attr, label, mine))
    return panels


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

    panels, streams = _panels(lines), _streams(lines)
    if not panels and not streams:
        return
    cols = 2
    rows_n = (len(panels) + bool(streams) + 1) // 2
    fig, axes = plt.subplots(rows_n, cols, figsize=(12, 4.5 * rows_n), squeeze=False)
    methods = sorted({ln.method for _, _, _, chosen in panels for ln in chosen})
    palette = [*plt.cm.tab20.colors, *plt.cm.Dark2.colors, *plt.cm.Set1.colors]  # 37 distinct colours
    colors = {m: palette[i % len(palette)] for i, m in enumerate(methods)}
    for ax, (title, attr, label, chosen) in zip(axes.flat, panels, strict=False):
        for method in methods:
            mine = [ln for ln in chosen if ln.method == method]
            if mine:
                marker = "*" if method == "full" else ("s" if method.startswith("kvpress:") else "o")
                ax.scatter([getattr(ln, attr) for ln in mine], [ln.quality for ln in mine], label=method,
                           color=colors[method], marker=marker, s=140 if method == "full" else 45)
                for ln in mine:  # which budget a point is
                    if method != "full":
                        ax.annotate(f"{ln.budget:g}", (getattr(ln, attr), ln.quality), fontsize=6, alpha=0.6,
                                    xytext=(4, 3), textcoords="offset points")
        front = pareto([(getattr(ln, attr), ln.quality) for ln in chosen], attr in HIGHER_IS_BETTER)
        if front:
            ax.step(*zip(*front, strict=True), where="post", color="grey", lw=1, ls="--", label="Pareto front")
        ax.set_xlabel(label)
        ax.set_ylabel(QUALITY[title.split()[0]])
        ax.set_title(f"{title}: quality vs {label.split(' (')[0]}")
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


def html_page(lines: list[Line], rows: list[dict], path: Path, title: str, command: str) -> None:
    import plotly.colors as pc
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.subplots import make_subplots

    panels = _panels(lines)
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p><code>{html.escape(command)}</code></p>"]
    if panels:
        rows_n = (len(panels) + 1) // 2
        titles = [f"{t}: quality vs {lab.split(' (')[0]}" for t, _, lab, _ in panels]
        fig = make_subplots(rows=rows_n, cols=2, subplot_titles=titles)
        shown: set[str] = set()
        palette = pc.qualitative.Dark24
        every = sorted({ln.method for _, _, _, chosen in panels for ln in chosen})
        color = {m: palette[i % len(palette)] for i, m in enumerate(every)}
        for i, (title_, attr, label, chosen) in enumerate(panels):
            r, c = i // 2 + 1, i % 2 + 1
            for method in sorted({ln.method for ln in chosen}):
                mine = [ln for ln in chosen if ln.method == method]
                fig.add_trace(go.Scatter(
                    x=[getattr(ln, attr) for ln in mine], y=[ln.quality for ln in mine], mode="markers",
                    name=method, legendgroup=method, showlegend=method not in shown,
                    marker={"symbol": "star" if method == "full" else ("square" if ":" in method else "circle"),
                            "size": 14 if method == "full" else 9, "color": color[method]},
                    text=[f"{method} @ {ln.budget:g}<br>n={ln.n} failed={ln.failed}" for ln in mine],
                    hovertemplate="%{text}<br>x=%{x:.3g}<br>y=%{y:.3g}<extra></extra>"), row=r, col=c)
                shown.add(method)
            front = pareto([(getattr(ln, attr), ln.quality) for ln in chosen], attr in HIGHER_IS_BETTER)
            fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines",
                                     line={"shape": "hv", "dash": "dash", "color": "grey"}, name="Pareto front",
                                     legendgroup="pareto", showlegend="pareto" not in shown), row=r, col=c)
            shown.add("pareto")
            fig.update_xaxes(title_text=label, row=r, col=c)
            fig.update_yaxes(title_text=QUALITY[title_.split()[0]], row=r, col=c)
        fig.update_layout(height=450 * rows_n, template="plotly_white")
        parts.append(pio.to_html(fig, include_plotlyjs="inline", full_html=False, div_id="pareto"))
    streams = _streams(lines)
    if streams:
        fig = go.Figure([go.Scatter(x=tokens, y=kv_mb, mode="lines+markers", name=label,
                                    customdata=rss, hovertemplate="%{x} tokens<br>KV %{y:.1f} MB"
                                    "<br>RSS %{customdata:.0f} MB<extra>" + label + "</extra>")
                         for label, tokens, kv_mb, rss in streams])
        fig.update_layout(title="streaming: KV memory along the stream", xaxis_title="stream tokens read",
                          yaxis_title="kept KV MB", template="plotly_white", height=420)
        parts.append(pio.to_html(fig, include_plotlyjs=False if panels else "inline", full_html=False,
                                 div_id="streaming"))
    for title, head, body in sections(lines, rows):
        parts.append(f"<h2>{html.escape(title)}</h2>" + _html_table(head, body))
    parts += [f"<p>{html.escape(note)}</p>" for note in footnotes(lines)]
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
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
