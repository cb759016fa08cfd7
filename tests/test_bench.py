"""The bench harness on the real SmolLM2-135M: tiny grids, real text, real eviction, real kvpress kvpress."""

from __future__ import annotations

import math

import pytest

from tokensieve.bench.peers import kvpress
from tokensieve.bench.runner import grid, run_cell, sweep
from tokensieve.bench.store import Store
from tokensieve.bench.suites import TS_METHODS
from tokensieve.bench.summary import budget_check
from tokensieve.bench.tasks import needle_cases

MODEL = "smollm2-135m"
FIDELITY = {"task": "fidelity", "tokens": 192, "continuation": 16, "offset": 3}
HAS_PEERS = kvpress.available()


@pytest.fixture(scope="module")
def at_full_budget(smollm2):
    """Every tokensieve policy (and the kvpress presses when their venv exists) at budget 1.0."""
    methods = list(TS_METHODS) + ([kvpress.PREFIX + p for p in ("streaming_llm", "snapkv")] if HAS_PEERS else [])
    cells = grid([MODEL], needle_cases([192], [0.5], [0]) + [FIDELITY], methods, [1.0])
    try:
        return [run_cell(c) for c in cells]
    finally:
        kvpress.close_all()


@pytest.mark.real
@pytest.mark.slow  # a sweep of every method
@pytest.mark.peers()  # with the kvpress venv, its presses join the grid
def test_budget_one_reproduces_the_full_cache_for_every_method(at_full_budget):
    needle = {r["method"]: r for r in at_full_budget if r["task"] == "needle"}
    fidelity = {r["method"]: r for r in at_full_budget if r["task"] == "fidelity"}
    assert all(r["status"] == "ok" for r in at_full_budget), [r["metrics"] for r in at_full_budget]
    assert set(TS_METHODS) <= set(needle)
    full = needle["full"]
    assert full["quality"] == 1.0  # SmolLM2 finds this needle with the full cache
    for method, row in needle.items():
        assert row["metrics"]["answer"] == full["metrics"]["answer"], method
        assert row["quality"] == full["quality"], method
        if kvpress.is_peer(method):
            assert row["metrics"]["kv_bytes_kept"] == row["metrics"]["kv_bytes_full"], method
            continue
        # nothing evicted: every layer keeps the whole prompt, in the same buffers as the full cache (which
        # really allocates a little more than the keys and values: their positions too)
        m = row["metrics"]
        assert m["kept_tokens"] == full["metrics"]["kept_tokens"] == [m["prompt_tokens"]] * 30, method
        assert m["kv_bytes_kept"] == full["metrics"]["kv_bytes_kept"] >= m["kv_bytes_full"], method
        assert m["dense_fallbacks"] == 0 and m["kv_bytes_end"] >= m["kv_bytes_kept"], method
    for method, row in fidelity.items():
        assert row["quality"] == 1.0, method
        assert row["metrics"]["kl"] < 1e-4, method
        assert row["metrics"]["ppl_ratio"] == pytest.approx(1.0, abs=1e-3), method


@pytest.mark.real
def test_a_smaller_budget_really_drops_kv_and_moves_the_distribution(smollm2):
    cells = grid([MODEL], needle_cases([384], [0.5], [0]) + [FIDELITY], ["snapkv"], [0.25])
    rows = {r["task"]: r for r in (run_cell(c) for c in cells)}
    needle = rows["needle"]["metrics"]
    assert needle["kv_bytes_kept"] < 0.3 * needle["kv_bytes_full"]
    assert max(needle["kept_tokens"]) <= 0.25 * needle["prompt_tokens"] + 1
    assert budget_check(rows["needle"]) == (max(needle["kept_tokens"]), math.ceil(0.25 * needle["prompt_tokens"]))
    fidelity = rows["fidelity"]["metrics"]
    assert fidelity["kl"] > 1e-3 and fidelity["kv_bytes_kept"] < 0.3 * fidelity["kv_bytes_full"]
    assert 0 < rows["fidelity"]["quality"] <= 1


@pytest.mark.real
def test_fidelity_scores_a_dynamic_selector_at_decode_not_a_dense_fallback(smollm2):
    """Fed as one block, the teacher-forced continuation would attend densely; it must go step by step."""
    rows = {r["budget"]: r for r in (run_cell(c) for c in grid([MODEL], [FIDELITY], ["hisa"], [1.0, 0.25]))}
    assert rows[1.0]["metrics"]["kl"] < 1e-4 and rows[1.0]["quality"] == 1.0
    assert rows[0.25]["metrics"]["kl"] > 1e-4, "a quarter of the keys per query must move the distribution"
    quarter = rows[0.25]["metrics"]
    assert quarter["kept_tokens"] == [FIDELITY["tokens"]] * 30  # nothing evicted
    # each continuation query attended its quarter of what it saw, and the row says so
    real, nominal = budget_check(rows[0.25])
    assert 0 < real <= nominal == math.ceil(0.25 * (FIDELITY["tokens"] + FIDELITY["continuation"] - 1))


@pytest.mark.real
def test_streaming_keeps_the_cache_bounded_while_full_grows(smollm2):
    case = {"task": "streaming", "tokens": 512, "chunk": 64, "window": 128}
    rows = {r["method"]: r for r in (run_cell(c) for c in grid([MODEL], [case], ["full", "streaming_llm"], [0.5]))}
    bounded, full = rows["streaming_llm"]["metrics"], rows["full"]["metrics"]
    per_token = full["kv_bytes_kept"] / 512
    assert max(m["kv_bytes"] for m in bounded["memory"]) <= per_token * (64 + 64) + 1
    assert [m["kv_bytes"] for m in full["memory"]] == sorted(m["kv_bytes"] for m in full["memory"])
    assert full["memory"][-1]["kv_bytes"] == full["kv_bytes_kept"] == per_token * 512
    assert 1 < full["ppl"] < 200 and 1 < bounded["ppl"] < 400
    assert full["tokens"] == bounded["tokens"] == 512


@pytest.mark.real
@pytest.mark.peers("kvpress")
def test_kvpress_presses_run_on_the_same_prompt_and_a_crash_is_a_failed_cell(smollm2, at_full_budget):
    full = next(r for r in at_full_budget if r["task"] == "needle" and r["method"] == "full")
    peer_rows = [r for r in at_full_budget if r["method"].startswith(kvpress.PREFIX) and r["task"] == "needle"]
    assert peer_rows and all(r["metrics"]["prompt_tokens"] == full["metrics"]["prompt_tokens"] for r in peer_rows)
    cells = grid([MODEL], needle_cases([192], [0.5], [0]) + [FIDELITY], ["kvpress:knorm", "kvpress:pyramidkv"],
                 [0.5])
    try:
        rows = {(r["task"], r["method"]): r for r in (run_cell(c) for c in cells)}
    finally:
        kvpress.close_all()
    knorm = rows[("needle", "kvpress:knorm")]
    assert knorm["status"] == "ok" and knorm["metrics"]["kv_bytes_kept"] == pytest.approx(
        0.5 * knorm["metrics"]["kv_bytes_full"], rel=0.02)
    # kvpress's PyramidKV leaves layers of different lengths, and a teacher-forced continuation on that cache
    # raises inside transformers: the sweep records a failed cell with the error and goes on.
    crashed = rows[("fidelity", "kvpress:pyramidkv")]
    assert crashed["status"] == "failed" and "Error" in crashed["metrics"]["error"]
    assert rows[("fidelity", "kvpress:knorm")]["status"] == "ok"


@pytest.mark.real
@pytest.mark.slow
def test_ray_executor_gives_the_same_rows_as_local(smollm2, tmp_path):
    pytest.importorskip("ray")
    import ray

    cells = grid([MODEL], needle_cases([160], [0.2], [1]), ["full", "tova"], [0.5])
    local, remote = Store(tmp_path / "local.sqlite"), Store(tmp_path / "ray.sqlite")
    sweep(cells, local)
    try:
        assert sweep(cells, remote, executor="ray", num_cpus=1) == 2
    finally:
        ray.shutdown()
    strip = [(r["key"], r["status"], r["quality"], r["metrics"]["answer"]) for r in local.rows()]
    assert strip == [(r["key"], r["status"], r["quality"], r["metrics"]["answer"]) for r in remote.rows()]
    assert sweep(cells, remote, executor="ray") == 0  # resumable there too: nothing left to run
