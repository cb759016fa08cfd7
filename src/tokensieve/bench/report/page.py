"""The report's self-contained HTML page (results.html): plotly charts with plotly.js inline, the tables as HTML,
a filter bar (model / task / length, also read from ?model=…&task=…&length=…), its JavaScript and the styles."""

from __future__ import annotations

import html
from pathlib import Path

from tokensieve.bench.report.plots import make_panels, panel_figure, stream_series
from tokensieve.bench.report.tables import Section, footnotes, sections
from tokensieve.bench.summary import Line

FILTERS = ("model", "task", "length")  # the HTML filter bar: data-model / data-task / data-length


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


def html_page(lines: list[Line], rows: list[dict], path: Path, title: str, command: str) -> None:
    import plotly.colors as pc
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    panels, streams = make_panels(lines), stream_series(lines)
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p><code>{html.escape(command)}</code></p>", _filter_bar(lines)]
    if panels:
        every = sorted({ln.method for p in panels for ln in p.lines})
        palette = pc.qualitative.Dark24
        color = {m: palette[i % len(palette)] for i, m in enumerate(every)}
        charts = [f"<div class='filterable'{_data({'model': p.model, 'task': p.task, 'length': str(p.tokens)})}>"
                  + pio.to_html(panel_figure(p, color), include_plotlyjs=False, full_html=False,
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
