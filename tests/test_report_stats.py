"""The report's statistics on synthetic rows (no model is loaded): intervals, paired verdicts against `full`,
the "What this shows" paragraph, the RULER subtask table, the HTML filter bar and the Pareto PNG."""

from __future__ import annotations

import math
import re
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_bench_cli import CHROMIUM, FLAGS, _console_errors  # the existing headless-Chromium check's helpers

from tokensieve.bench import report
from tokensieve.bench.report.tables import what_this_shows
from tokensieve.bench.stats import format_interval, interval
from tokensieve.bench.store import Store
from tokensieve.bench.summary import budget_base, context_tokens, decode_forwards, summarise

SUBTASKS = ("niah_multikey", "niah_single_1", "qa", "vt")
N = 50


def _row(model: str, task: str, case_id: str, method: str, budget: float, quality: float) -> dict:
    prompt = 4096 if "/4096/" in case_id else 1024
    metrics = {"prompt_tokens": prompt, "kept_tokens": [math.ceil(budget * prompt)] * 4, "new_tokens": 8,
               "kv_bytes_kept": budget * 2**20, "kv_bytes_full": 2**20, "prefill_s": 1.0, "shared_prefill_s": 0.5,
               "decode_tok_s": 20.0, "peak_rss_mb": 900.0, "branched": True, "answer": "x", "expected": ["x"]}
    return {"key": f"{model}|{case_id}|{method}|{budget}", "version": "v", "model": model, "task": task,
            "case_id": case_id, "method": method, "budget": budget, "status": "ok", "quality": quality,
            "metrics": metrics}


def _ruler(tokens: int, i: int) -> str:
    return f"ruler/{SUBTASKS[i % len(SUBTASKS)]}/{tokens}/essays/s{i}"


def synthetic_rows() -> list[dict]:
    """qwen, ruler at 4096 (pass/fail): full passes 40 of 50; snapkv fails 20 of those (worse); tokenselect 2
    (n.s.). qwen, ruler at 1024 (fractional recall): streaming_llm loses a quarter on 30 cases (worse); tova moves
    3 cases up and 3 down (n.s.). smol, code at 4096: snapkv passes exactly the problems full passes (n.s.)."""
    rows = []
    for i in range(N):
        full = float(i < 40)
        case = _ruler(4096, i)
        rows += [_row("qwen", "ruler", case, "full", 1.0, full),
                 _row("qwen", "ruler", case, "snapkv", 0.125, float(i < 20)),
                 _row("qwen", "ruler", case, "tokenselect", 0.25, float(i < 38))]
        score = (1.0, 0.75, 0.5)[i % 3]
        case = _ruler(1024, i)
        tova = score + (0.25 if i in (3, 6, 9) else -0.25 if i in (1, 4, 7) else 0.0)
        rows += [_row("qwen", "ruler", case, "full", 1.0, score),
                 _row("qwen", "ruler", case, "streaming_llm", 0.25, score - 0.25 if i < 30 else score),
                 _row("qwen", "ruler", case, "tova", 0.25, tova)]
        case = f"code/4096/p{i}"
        rows += [_row("smol", "code", case, "full", 1.0, float(i % 5 < 3)),
                 _row("smol", "code", case, "snapkv", 0.25, float(i % 5 < 3))]
    return rows


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("report")
    store = Store(tmp / "r.sqlite")
    store.set_meta("command", "tokensieve bench --suite standard")
    for row in synthetic_rows():
        store.put(row)
    store.close()
    return report.write(tmp / "r.sqlite", tmp / "out", command=f"tokensieve report --db {tmp / 'r.sqlite'}")


def _section(text: str, title: str) -> str:
    return text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]


def _table(section: str) -> list[dict[str, str]]:
    lines = [ln for ln in section.splitlines() if ln.startswith("|") and not ln.startswith("|---")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(head, [c.strip() for c in ln.strip("|").split("|")], strict=True)) for ln in lines[1:]]


def _by_method(section: str) -> dict[str, dict[str, str]]:
    return {f"{r['method']}@{r['budget']}": r for r in _table(section)}


def test_case_ids_of_the_new_tasks_give_their_length_budget_base_and_decode_steps():
    ruler = _row("m", "ruler", "ruler/niah_multikey/4096/essays/s3", "snapkv", 0.25, 0.75)
    code = _row("m", "code", "code/2048/p17", "snapkv", 0.25, 1.0)
    assert context_tokens(ruler) == 4096 and context_tokens(code) == 2048
    assert context_tokens({**code, "case_id": "code/0/p1"}) == 0
    assert budget_base(ruler) == 4096 and budget_base({**code, "metrics": {"prompt_tokens": 2210}}) == 2210
    assert decode_forwards(ruler) == decode_forwards(code) == 7  # new_tokens - 1


def test_lines_carry_intervals_and_the_paired_comparison_with_full():
    lines = {(ln.model, ln.tokens, ln.method): ln for ln in summarise(synthetic_rows())}
    full = lines[("qwen", 4096, "full")]
    assert full.vs_full is None and full.interval.method == "wilson" and full.interval.n == N
    snap = lines[("qwen", 4096, "snapkv")].vs_full
    assert snap.method == "mcnemar" and snap.discordant == (20, 0) and snap.significant and snap.diff == -0.4
    near = lines[("qwen", 4096, "tokenselect")].vs_full
    assert near.discordant == (2, 0) and not near.significant
    tova = lines[("qwen", 1024, "tova")]
    assert tova.interval.method == "bootstrap" and tova.vs_full.method == "bootstrap" and not tova.vs_full.significant
    stream = lines[("qwen", 1024, "streaming_llm")].vs_full
    assert stream.significant and stream.diff == pytest.approx(-0.15)
    assert lines[("qwen", 4096, "full")].subtasks["niah_multikey"] == pytest.approx(10 / 13)
    assert lines[("qwen", 4096, "full")].subtask_n == {"niah_multikey": 13, "niah_single_1": 13, "qa": 12, "vt": 12}
    assert lines[("smol", 4096, "snapkv")].subtasks == {}  # code has no subtasks


def test_ours_is_compared_head_to_head_with_the_kvpress_press_of_the_same_method_and_budget():
    """Ours passes 20 of 50, kvpress's SnapKV 10 of those at the same budget (ours - peer = +20 points, McNemar);
    tova_layer, which names TOVAPress as its peer, 30 against the press's 40; the peer's other budget and a press
    with no namesake of ours get no comparison."""
    rows = []
    for i in range(N):
        case = _ruler(4096, i)
        rows += [_row("qwen", "ruler", case, "full", 1.0, float(i < 40)),
                 _row("qwen", "ruler", case, "snapkv", 0.125, float(i < 20)),
                 _row("qwen", "ruler", case, "kvpress:snapkv", 0.125, float(i < 10)),
                 _row("qwen", "ruler", case, "kvpress:snapkv", 0.25, float(i < 30)),
                 _row("qwen", "ruler", case, "kvpress:kvzip", 0.125, float(i < 30)),
                 _row("qwen", "ruler", case, "tova_layer", 0.25, float(i < 30)),
                 _row("qwen", "ruler", case, "kvpress:tova", 0.25, float(i < 40))]
    lines = {(ln.method, ln.budget): ln for ln in summarise(rows)}
    head = lines[("snapkv", 0.125)].vs_peer
    assert head.discordant == (0, 10) and head.diff == pytest.approx(0.2) and head.significant
    variant = lines[("tova_layer", 0.25)]
    assert variant.peer == "kvpress:tova" and variant.vs_peer.diff == pytest.approx(-0.2)
    assert all(ln.vs_peer is None for key, ln in lines.items() if key not in (("snapkv", 0.125), ("tova_layer", 0.25)))
    text = what_this_shows(list(lines.values()))
    assert "kvpress's press of the same method and budget, on the same cases: snapkv @ 0.125 +20 points" in text
    assert "tova_layer @ 0.25 (against kvpress:tova) −20 points" in text
    assert text.count("n=50") == 3 and "not distinguishable)" not in text.split("Ours minus")[1]


def test_markdown_sections_show_intervals_verdicts_and_only_significant_differences(written):
    text = written["markdown"].read_text()
    assert "Generated by `tokensieve report --db" in text.splitlines()[2]
    section = _section(text, "ruler · qwen · 4096 tokens")
    rows = _by_method(section)
    full_iv = format_interval(interval([1.0] * 40 + [0.0] * 10))
    assert rows["full@1"]["quality [95 % CI]"] == full_iv == "80% [67–89]"
    assert rows["full@1"]["vs full, points [95 % CI]"] == "reference" and rows["full@1"]["verdict"] == "—"
    assert rows["snapkv@0.125"]["quality [95 % CI]"] == format_interval(interval([1.0] * 20 + [0.0] * 30))
    assert re.fullmatch(r"−40 \[−\d+, −\d+\] p<0\.001", rows["snapkv@0.125"]["vs full, points [95 % CI]"])
    assert rows["snapkv@0.125"]["verdict"] == "worse"
    assert rows["tokenselect@0.25"]["verdict"] == "n.s."
    assert rows["tokenselect@0.25"]["vs full, points [95 % CI]"].endswith("p=0.5")  # McNemar: 2 vs 0 discordant
    assert rows["snapkv@0.125"]["kept KV"] == "0.12" and rows["snapkv@0.125"]["over budget"] == "no"

    shows = next(ln for ln in section.splitlines() if ln.startswith("**What this shows.**"))
    assert f"At 4096 tokens on qwen, full scores {full_iv} (n=50)." in shows
    worse = re.search(r"Significantly worse than full: (.*?)\.(?: [A-Z]|$)", shows).group(1)
    assert worse.startswith("snapkv @ 0.125 (−40 points [") and "tokenselect" not in worse
    assert "Not distinguishable from full at this n: tokenselect @ 0.25." in shows and "better" not in shows

    fractional = _section(text, "ruler · qwen · 1024 tokens")
    rows = _by_method(fractional)
    scores = [(1.0, 0.75, 0.5)[i % 3] for i in sorted(range(N), key=lambda i: _ruler(1024, i))]  # by case id
    assert rows["full@1"]["quality [95 % CI]"] == format_interval(interval(scores))
    assert rows["streaming_llm@0.25"]["verdict"] == "worse" and rows["tova@0.25"]["verdict"] == "n.s."
    shows = next(ln for ln in fractional.splitlines() if ln.startswith("**What this shows.**"))
    assert "Significantly worse than full: streaming_llm @ 0.25 (−15 points [" in shows
    assert "Not distinguishable from full at this n: tova @ 0.25." in shows

    code = _section(text, "code · smol · 4096 tokens")
    assert _by_method(code)["snapkv@0.25"]["verdict"] == "n.s."
    assert "full scores 60% [" in code and "Significantly" not in code
    assert report.STATS_NOTE in text


def test_ruler_subtask_table_per_model_and_length(written):
    text = written["markdown"].read_text()
    rows = _table(_section(text, "ruler subtasks · qwen · 4096 tokens"))
    assert list(rows[0]) == ["method", "budget", "niah_multikey (n=13)", "niah_single_1 (n=13)", "qa (n=12)",
                             "vt (n=12)"]
    full = rows[0]
    assert full["method"] == "full" and full["niah_multikey (n=13)"] == f"{10 / 13 * 100:.0f}%"
    assert "ruler subtasks · smol" not in text and "code subtasks" not in text


class _Page(HTMLParser):
    """The selects' options and the data attributes of every filterable wrapper."""

    def __init__(self) -> None:
        super().__init__()
        self.options: dict[str, list[str]] = {}
        self.select: str | None = None
        self.wrappers: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select":
            self.select = attrs["id"]
            self.options[self.select] = []
        elif tag == "option" and self.select:
            self.options[self.select].append(attrs["value"])
        elif "filterable" in (attrs.get("class") or ""):
            self.wrappers.append({k[5:]: v for k, v in attrs.items() if k.startswith("data-")} | {"tag": tag})

    def handle_endtag(self, tag):
        if tag == "select":
            self.select = None


def test_html_has_the_filter_bar_and_data_attributes(written):
    page = _Page()
    page.feed(written["html"].read_text())
    assert page.options == {"filter-model": ["all", "qwen", "smol"], "filter-task": ["all", "code", "ruler"],
                            "filter-length": ["all", "1024", "4096"]}
    sections = [w for w in page.wrappers if w["tag"] == "section"]
    assert {"model": "qwen", "task": "ruler", "length": "4096", "tag": "section"} in sections
    assert {"model": "smol", "task": "code", "length": "4096", "tag": "section"} in sections
    charts = [w for w in page.wrappers if w["tag"] == "div"]
    assert len(charts) == 3 and all(set(w) == {"model", "task", "length", "tag"} for w in charts)  # one per panel
    text = written["html"].read_text()
    assert "What this shows." in text and '"arrayminus"' in text  # error bars below and above each point
    assert "<script src=" not in text


def test_png_has_error_bars_per_ruler_and_code_panel(written):
    assert written["png"].stat().st_size > 10_000
    panels = report.png_only_panels(report.make_panels(summarise(synthetic_rows())))
    assert [p.title for p in panels] == ["ruler · qwen · 1024 tokens", "ruler · qwen · 4096 tokens",
                                         "code · smol · 4096 tokens"]


def test_terminal_summary_has_model_length_and_intervals():
    from rich.console import Console

    from tokensieve.bench.command import summary_table

    console = Console(record=True, width=300)
    console.print(summary_table(synthetic_rows()))
    out = console.export_text()
    assert "model" in out and "tokens" in out and "80% [67–89]" in out
    body = [ln for ln in out.splitlines() if "qwen" in ln or "smol" in ln]
    keys = [tuple(c.strip() for c in re.split(r"[│┃]", ln)[1:6]) for ln in body]
    assert keys == sorted(keys, key=lambda k: (k[0], k[1], int(k[2]), k[3], float(k[4])))
    assert len(keys) == 8


@pytest.mark.peers("chromium")
def test_html_filters_preselected_from_the_query_hide_other_sections(written, tmp_path):
    def dom(query: str) -> str:
        run = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / str(time.monotonic_ns())}",
                              "--dump-dom", "--virtual-time-budget=5000", written["html"].as_uri() + query],
                             capture_output=True, text=True, timeout=120)
        assert _console_errors(run.stderr) == [], run.stderr[-1500:]
        return run.stdout

    def styles(page: str) -> dict[tuple[str, str, str], str]:
        found = re.findall(r'<section class="filterable" data-model="(\w+)" data-task="(\w+)" data-length="(\d+)"'
                           r'(?: style="([^"]*)")?', page)
        return {(m, t, n): style for m, t, n, style in found}

    shown = styles(dom("?model=smol"))
    assert shown[("smol", "code", "4096")] == "" and shown[("qwen", "ruler", "4096")] == "display: none;"
    assert "main-svg" in dom("")  # plotly drew its charts
    shown = styles(dom("?task=ruler&length=1024"))
    assert shown[("qwen", "ruler", "1024")] == ""
    assert {k for k, v in shown.items() if v != "display: none;"} == {("qwen", "ruler", "1024")}
