"""`tokensieve bench` / `report` end to end: SIGKILL and resume, bad input, and the HTML in headless Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokensieve.cli import app

TINY = ["--suite", "needles-v1", "--model", "smollm2-135m", "--tasks", "needle", "--lengths", "128",
        "--depths", "0.1,0.9", "--needles", "0,2", "--methods", "full,snapkv", "--budgets", "0.5"]
CELLS = 8
CLI = [sys.executable, "-c", "from tokensieve.cli import main; main()"]


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT count(*) FROM cells").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return sorted(con.execute("SELECT key, method, budget, case_id, status, quality, created FROM cells"))


@pytest.fixture(scope="module")
def clean_tiny(tmp_path_factory, smollm2) -> Path:
    """The TINY grid swept once, uninterrupted, in one process: what killed, resumed or laned sweeps must equal."""
    out = tmp_path_factory.mktemp("clean")
    result = CliRunner().invoke(app, ["bench", *TINY, "--lanes", "1", "--db", str(out / "clean.sqlite"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / "clean.sqlite"


@pytest.mark.real
@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun_loses_and_duplicates_nothing(tmp_path, clean_tiny):
    db = tmp_path / "kill.sqlite"
    args = CLI + ["bench", *TINY, "--db", str(db), "--out", str(tmp_path / "out")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _count(db) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    before = _rows(db)
    assert 2 <= len(before) < CELLS, "the kill must land mid-sweep"
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{CELLS - len(before)} cells run, {len(before)} already" in done.stderr
    after = _rows(db)
    assert len(after) == len({r[0] for r in after}) == CELLS
    assert set(before) <= set(after)  # rows written before the kill are untouched
    # the same final table as an uninterrupted sweep of the same grid
    assert [r[:6] for r in _rows(clean_tiny)] == [r[:6] for r in after]
    assert (tmp_path / "out" / "pareto.png").stat().st_size > 10_000
    assert "<script" in (tmp_path / "out" / "results.html").read_text()


@pytest.mark.real
@pytest.mark.slow
def test_two_lanes_store_the_rows_one_process_would(tmp_path, clean_tiny):
    lanes = tmp_path / "lanes.sqlite"
    result = CliRunner().invoke(app, ["bench", *TINY, "--lanes", "2", "--db", str(lanes), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"{CELLS} cells run, 0 already" in result.output
    assert [r[:6] for r in _rows(lanes)] == [r[:6] for r in _rows(clean_tiny)]
    again = CliRunner().invoke(app, ["bench", *TINY, "--lanes", "2", "--db", str(lanes), "--out", str(tmp_path)])
    assert f"0 cells run, {CELLS} already" in again.output


def test_a_lane_that_crashes_is_one_error_naming_its_log(tmp_path):
    from tokensieve.bench.lanes import start_lane, wait_lanes
    from tokensieve.errors import TokensieveError

    cells, log = tmp_path / "cells.json", tmp_path / "lane1.log"
    cells.write_text("not json")
    proc = start_lane(cells, tmp_path / "db.sqlite", log, 1, False)
    with pytest.raises(TokensieveError, match=r"lane 1 of 1 stopped \(exit 1\): .*JSONDecodeError.*lane1.log"):
        wait_lanes([proc], [log], every=0.05)


@pytest.mark.parametrize(("extra", "message"), [
    (["--tasks", "qa"], "unknown task 'qa'"),
    (["--methods", "full,magic"], "unknown method 'magic'"),
    (["--methods", "kvpress:magic"], "unknown kvpress press 'magic'"),
    (["--budgets", "0"], "budget 0 is outside (0, 1]"),
    (["--budgets", "0.5,1.5"], "budget 1.5 is outside (0, 1]"),
    (["--suite", "huge"], "unknown suite 'huge'"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1", "--methods", "full"], "cannot reach the Ray cluster"),
    (["--executor", "slurm", "--methods", "full"], "unknown executor 'slurm'"),
    (["--lanes", "0", "--methods", "full"], "--lanes must be at least 1"),
    (["--lanes", "2", "--executor", "ray", "--methods", "full"], "--lanes applies to the local executor"),
    (["--shard", "3/2", "--methods", "full"], "--shard takes K/N"),
    (["--suite", "standard", "--subtasks", "uuid"], "--subtasks takes RULER subtasks"),
    (["--suite", "needles-v1", "--subtasks", "qa"], "--subtasks qa: the suite has no RULER cases of these subtasks"),
    (["--suite", "needles-v1", "--model", "smollm2-135m", "--tasks", "needle", "--lengths", "8192", "--methods",
      "full"], "needle cases of 8192 tokens leave no room for the answer in smollm2-135m's 8192-token context"),
])
@pytest.mark.peers()  # refused before any venv is looked at, with the kvpress venv or without it
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, extra, message):
    result = CliRunner().invoke(app, ["bench", "--db", str(tmp_path / "b.sqlite"), *extra])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_bench_offers_retry_failed():
    result = CliRunner().invoke(app, ["bench", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--retry-failed" in result.output


def test_report_without_a_database_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(app, ["report", "--db", str(tmp_path / "none.sqlite"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no bench database" in result.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0"]


def _chromium(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{time.monotonic_ns()}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def _console_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln and ("Error" in ln or "Uncaught" in ln)]


@pytest.mark.peers("chromium")
def test_html_report_renders_in_headless_chromium_without_console_errors(tmp_path):
    from tokensieve.bench import report
    from tokensieve.bench.store import Store

    store = Store(tmp_path / "r.sqlite")
    for i, (method, budget, q, kv) in enumerate([("full", 1.0, 1.0, 1.0), ("snapkv", 0.5, 1.0, 0.5),
                                                 ("kvpress:snapkv", 0.5, 0.0, 0.5)]):
        store.put({"key": f"k{i}", "version": "v", "model": "smollm2-135m", "task": "needle",
                   "case_id": "needle/256/d0.50/n0", "method": method, "budget": budget, "status": "ok",
                   "quality": q, "metrics": {"kv_bytes_kept": kv * 100, "kv_bytes_full": 100, "prefill_s": 0.1 + i}})
    trace = [{"tokens": t, "rss_mb": 900.0 + t / 100, "kv_bytes": min(t, 1024) * 2**12} for t in (512, 4096, 8192)]
    store.put({"key": "s", "version": "v", "model": "smollm2-135m", "task": "streaming",
               "case_id": "streaming/8192/c512/w4096", "method": "streaming_llm", "budget": 0.25, "status": "ok",
               "quality": None, "metrics": {"ppl": 20.0, "memory": trace, "kv_bytes_kept": 2**22}})
    store.close()
    page = report.write(tmp_path / "r.sqlite", tmp_path / "out")["html"]
    text = page.read_text()
    assert 'id="streaming"' in text and 'id="pareto"' in text
    assert "<script src=" not in text and "<link " not in text and page.stat().st_size > 1_000_000  # inline JS

    shot = tmp_path / "shot.png"
    run = _chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600",
                    "--virtual-time-budget=5000")
    assert shot.exists() and shot.stat().st_size > 20_000, run.stderr[-1500:]
    assert _console_errors(run.stderr) == []
    dom = _chromium(page, tmp_path, "--dump-dom", "--virtual-time-budget=5000")
    assert "main-svg" in dom.stdout  # plotly ran and drew its SVG
    assert _console_errors(dom.stderr) == []

    broken = tmp_path / "broken.html"  # the detector itself must see a page that throws
    broken.write_text("<html><body><script>throw new Error('boom')</script></body></html>")
    assert _console_errors(_chromium(broken, tmp_path, "--dump-dom").stderr)


def test_report_command_aggregates_rows_and_writes_all_three_files(tmp_path):
    from tokensieve.bench.store import Store

    store = Store(tmp_path / "r.sqlite")
    store.set_meta("command", "tokensieve bench --suite quick")
    cases = [("needle/256/d0.10/n0", "full", 1.0, 1.0, 100), ("needle/256/d0.90/n0", "full", 1.0, 1.0, 100),
             ("needle/256/d0.10/n0", "snapkv", 0.5, 1.0, 50), ("needle/256/d0.90/n0", "snapkv", 0.5, 0.0, 50),
             ("needle/512/d0.10/n0", "snapkv", 0.5, 0.0, 50)]
    for i, (case, method, budget, q, kv) in enumerate(cases):
        store.put({"key": f"k{i}", "version": "v", "model": "smollm2-135m", "task": "needle", "case_id": case,
                   "method": method, "budget": budget, "status": "ok", "quality": q,
                   "metrics": {"kv_bytes_kept": kv, "kv_bytes_full": 100, "prefill_s": 1.0 + i}})
    store.put({"key": "bad", "version": "v", "model": "smollm2-135m", "task": "needle",
               "case_id": "needle/512/d0.90/n0", "method": "snapkv", "budget": 0.5, "status": "failed",
               "quality": None, "metrics": {"error": "RuntimeError: boom"}})
    store.close()
    out = tmp_path / "docs"
    result = CliRunner().invoke(app, ["report", "--db", str(tmp_path / "r.sqlite"), "--out", str(out),
                                      "--note", "A reduced grid."])
    assert result.exit_code == 0, result.output
    text = (out / "RESULTS.md").read_text()
    head = text.splitlines()[:8]
    assert any("tokensieve report --db" in ln and "--note …" in ln for ln in head)
    assert "tokensieve bench --suite quick" in text and text.count("A reduced grid.") == 1  # the note, once
    snap = {ln.split("|")[2].strip(): [c.strip() for c in ln.strip("|").split("|")] for ln in text.splitlines()
            if ln.startswith("| smollm2-135m |") and "| snapkv | 0.5 |" in ln}  # one line per context length
    assert snap["256"][4:7] == ["2", "50% [9–91]", "0.50"]  # 2 ok cases, 1 hit of 2 (Wilson 95 %), half the KV
    assert snap["512"][4:6] == ["1", "0% [0–79]"] and snap["512"][-1] == "1 (RuntimeError: boom)"
    assert "| snapkv | 0.5 | 1/2 | 0/1 |" in text  # hits by context length: 256 and 512 tokens
    assert (out / "pareto.png").stat().st_size > 10_000 and (out / "results.html").stat().st_size > 1_000_000


@pytest.mark.real
def test_bench_serve_records_the_command_that_reproduces_its_results(tmp_path):
    """The pool, the device and the output file are part of what a capacity row means: the recorded command
    carries them, and running it again reproduces the row."""
    import json
    import shlex

    out = tmp_path / "serve.json"
    args = ["bench", "serve", "--methods", "full", "--prompt-tokens", "64", "--new-tokens", "2", "--parts",
            "capacity", "--pool-mb", "2.5", "--out", str(out)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    first = json.loads(out.read_text())
    recorded = shlex.split(first["commands"][-1])
    assert recorded[:3] == ["tokensieve", "bench", "serve"]
    assert {"--pool-mb", "2.5", "--out", str(out), "--device", "cpu"} <= set(recorded)
    out.unlink()
    again = CliRunner().invoke(app, recorded[1:])
    assert again.exit_code == 0, again.output
    assert json.loads(out.read_text())["capacity"] == first["capacity"] and first["capacity"][0]["pool_mb"] == 2.5
