"""The encoder suite's report: per dataset, recall@1 / MRR / cosine to full with 95 % intervals and the paired
test against the plain model on the same queries; throughput per length as a ratio to the plain model measured in
the same sweep; a Pareto PNG (quality vs speed-up) and a self-contained HTML page (plotly)."""

from __future__ import annotations

import html
import statistics
from collections import defaultdict
from pathlib import Path

from tokensieve.bench.encoder_cells import REFERENCE
from tokensieve.bench.stats import compare, format_interval, interval, verdict

STATS_NOTE = ("recall@1: Wilson 95 % interval; MRR and cosine: bootstrap of the mean; Δ vs none: McNemar on the "
              "same queries (recall@1). A method is called worse or better only when p < 0.05 and the interval of "
              "the difference excludes 0; otherwise n.s. (not distinguishable from the plain model at this n).")


def _ok(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["status"] == "ok" and r["task"] == "encoder"]


def _speed(rows: list[dict]) -> dict[tuple[str, float], dict[int, dict]]:
    out: dict[tuple[str, float], dict[int, dict]] = defaultdict(dict)
    for r in rows:
        if r["case_id"].startswith("encoder/throughput/"):
            out[(r["method"], r["budget"])][int(r["case_id"].rsplit("/", 1)[1])] = r["metrics"]
    return out


def retrieval_table(rows: list[dict], dataset: str) -> tuple[list[str], list[dict]]:
    """Markdown lines and the per-line data (for plots) of one retrieval dataset."""
    chosen = [r for r in rows if r["case_id"] == f"encoder/retrieval/{dataset}"]
    ref = next((r["metrics"] for r in chosen if r["method"] == REFERENCE), None)
    speed = _speed(rows)
    base = speed.get((REFERENCE, 1.0), {}).get(256)
    out = [f"### {dataset} ({ref['pairs'] if ref else '?'} pairs)", "",
           "| method | keep | kept (measured) | recall@1 | Δ vs none | verdict | MRR | cosine to full "
           "| speed-up at 256 |",
           "|---|---|---|---|---|---|---|---|---|"]
    data = []
    for r in sorted(chosen, key=lambda r: (r["method"] != REFERENCE, r["method"], -r["budget"])):
        m = r["metrics"]
        rec, mrr, cos = interval(m["hits"]), interval(m["rr"], "bootstrap"), interval(m["cosine"], "bootstrap")
        diff, word = "", ""
        if ref is not None and r["method"] != REFERENCE:
            p = compare(ref["hits"], m["hits"])
            diff, word = f"{p.diff * 100:+.1f} pt [{p.low * 100:+.1f}, {p.high * 100:+.1f}], p={p.p:.2g}", verdict(p)
        s = speed.get((r["method"], r["budget"]), {}).get(256)
        ratio = s["sentences_per_s"] / base["sentences_per_s"] if s and base else None
        out.append(f"| {r['method']} | {r['budget']:g} | {m['kept_ratio']:.3f} | {format_interval(rec)} | {diff} | "
                   f"{word} | {format_interval(mrr, False)} | {cos.estimate:.4f} [{cos.low:.4f}–{cos.high:.4f}] | "
                   f"{'' if ratio is None else f'{ratio:.2f}×'} |")
        data.append({"method": r["method"], "keep": r["budget"], "kept": m["kept_ratio"], "recall": rec.estimate,
                     "cosine": cos.estimate, "speedup": ratio, "verdict": word})
    return out, data


def throughput_table(rows: list[dict]) -> list[str]:
    speed = _speed(rows)
    lengths = sorted({t for per in speed.values() for t in per})
    base = speed.get((REFERENCE, 1.0), {})
    head = " | ".join(f"{t} tokens: sent/s (× none)" for t in lengths)
    out = ["### throughput (batch 32, median of 3 repeats after a warm-up; one process, same sweep)", "",
           f"| method | keep | kept (measured) | {head} | GFLOPs at 256 (× none) | peak RSS MB |",
           "|---|---|---|" + "---|" * len(lengths) + "---|---|"]
    for (method, keep), per in sorted(speed.items(), key=lambda kv: (kv[0][0] != REFERENCE, kv[0][0], -kv[0][1])):
        cells = []
        for t in lengths:
            m, b = per.get(t), base.get(t)
            cells.append("" if m is None else f"{m['sentences_per_s']:.1f}"
                         + (f" ({m['sentences_per_s'] / b['sentences_per_s']:.2f}×)" if b else ""))
        at = per.get(256) or next(iter(per.values()))
        kept = statistics.fmean(p["kept_ratio"] for p in per.values())
        flops = f"{at['gflops']:.0f} ({at['gflops'] / at['gflops_full']:.2f}×)"
        rss = max(p["peak_rss_mb"] for p in per.values())
        out.append(f"| {method} | {keep:g} | {kept:.3f} | {' | '.join(cells)} | {flops} | {rss:.0f} |")
    return out


REACHED = 0.03  # a line meets its budget when the measured kept ratio is at most keep + this


def best_per_budget(data: dict[str, list[dict]]) -> list[str]:
    """Per nominal keep: among the lines that really met it (measured kept ratio <= keep + REACHED), the method
    with the highest recall@1 on each dataset (ties -> higher cosine); the lines that kept more are named."""
    out = []
    for keep in sorted({d["keep"] for ds in data.values() for d in ds if d["method"] != REFERENCE}, reverse=True):
        parts = []
        missed = sorted({d["method"] for ds in data.values() for d in ds
                         if d["keep"] == keep and d["method"] != REFERENCE and d["kept"] > keep + REACHED})
        for name, ds in data.items():
            pool = [d for d in ds if d["keep"] == keep and d["method"] != REFERENCE and d["kept"] <= keep + REACHED]
            if pool:
                best = max(pool, key=lambda d: (d["recall"], d["cosine"]))
                parts.append(f"{name}: **{best['method']}** (recall@1 {best['recall'] * 100:.1f} %, cosine "
                             f"{best['cosine']:.4f}, {best['verdict']} vs none)")
        note = f" (not reaching this budget, so not ranked: {', '.join(missed)})" if missed else ""
        out.append(f"- keep {keep:g}: " + "; ".join(parts) + note)
    return out


def plots(data: dict[str, list[dict]], png: Path, page: Path, command: str, markdown: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    import plotly.io as pio

    fig, axes = plt.subplots(1, len(data), figsize=(6 * len(data), 4.5), squeeze=False)
    figures = []
    for ax, (name, ds) in zip(axes[0], data.items(), strict=True):
        pfig = go.Figure()
        for method in sorted({d["method"] for d in ds}):
            pts = sorted((d["speedup"], d["cosine"], d["keep"]) for d in ds if d["method"] == method and d["speedup"])
            if not pts:
                continue
            xs, ys, ks = zip(*pts, strict=True)
            plain = method == REFERENCE
            ax.plot(xs, ys, "k*" if plain else "o-", label=method, markersize=9 if plain else 5)
            pfig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=method, customdata=ks,
                                      hovertemplate="keep %{customdata}<br>%{x:.2f}× · cosine %{y:.4f}"))
        ax.set(title=f"{name}: cosine to full vs speed-up at 256 tokens", xlabel="sentences/s ÷ plain model",
               ylabel="mean cosine to full")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        pfig.update_layout(title=f"{name}: cosine to full vs speed-up (256 tokens)", template="plotly_white",
                           xaxis_title="× plain model", yaxis_title="cosine to full", height=420)
        figures.append(pio.to_html(pfig, include_plotlyjs=False, full_html=False))
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    from plotly.offline import get_plotlyjs

    body = "".join(figures) + "<pre>" + html.escape(markdown) + "</pre>"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>tokensieve encoder</title>"
                    f"<script>{get_plotlyjs()}</script></head><body><h1>tokensieve encoder bench</h1>"
                    f"<p><code>{html.escape(command)}</code></p>{body}</body></html>", encoding="utf-8")


def write(rows: list[dict], out: str | Path, command: str) -> dict[str, Path]:
    """ENCODER-RESULTS.md, encoder-pareto.png and encoder.html in `out` from the encoder rows."""
    rows = _ok(rows)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": folder / "ENCODER-RESULTS.md", "png": folder / "encoder-pareto.png",
             "html": folder / "encoder.html"}
    data, body = {}, []
    for dataset in ("humaneval", "corpus"):
        if any(r["case_id"] == f"encoder/retrieval/{dataset}" for r in rows):
            lines, data[dataset] = retrieval_table(rows, dataset)
            body += lines + [""]
    body += throughput_table(rows) + ["", "### best method per budget", ""] + best_per_budget(data)
    text = (f"# tokensieve encoder bench\n\nGenerated from a sweep run with:\n\n```\n{command}\n```\n\n"
            f"![Pareto](encoder-pareto.png)\n\n{STATS_NOTE}\n\n" + "\n".join(body) + "\n")
    paths["markdown"].write_text(text, encoding="utf-8")
    plots(data, paths["png"], paths["html"], command, text)
    return paths
