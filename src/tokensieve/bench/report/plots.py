"""The report's charts: quality against each cost of its task per (model, task, length) with 95 % error bars and
the Pareto front, plus KV memory along each streaming run; as one matplotlib PNG (pareto.png) and as plotly figures
for the HTML page (`page`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokensieve.bench.peers.kvpress import is_peer
from tokensieve.bench.report.formatting import (
    COSTS,
    PROMPT_TASKS,
    QUALITY,
    length_text,
    quality_text,
    verdict_text,
    vs_full_text,
)
from tokensieve.bench.summary import Line


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
        return f"{self.task} · {self.model} · {length_text(self.task, self.tokens)}"


def make_panels(lines: list[Line]) -> list[Panel]:
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


def png_only_panels(panels: list[Panel]) -> list[Panel]:
    """RULER and code panels when there are any (needle and fidelity otherwise), at most MAX_PNG_PANELS."""
    return ([p for p in panels if p.task in PROMPT_TASKS] or panels)[:MAX_PNG_PANELS]


def _errors(mine: list[Line]) -> tuple[list[float], list[float]]:
    """(below, above) each point: the distance to its interval's ends (0 without an interval)."""
    below = [max(0.0, ln.quality - ln.interval.low) if ln.interval else 0.0 for ln in mine]
    above = [max(0.0, ln.interval.high - ln.quality) if ln.interval else 0.0 for ln in mine]
    return below, above


def stream_series(lines: list[Line]) -> list[tuple[str, list[int], list[float], list[float]]]:
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

    panels, streams = png_only_panels(make_panels(lines)), stream_series(lines)
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
                marker = "*" if method == "full" else ("s" if is_peer(method) else "o")
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


def panel_figure(panel: Panel, color: dict[str, str]):
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
