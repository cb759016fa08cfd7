"""Bench harness parts that need no model: store, grid, metrics, FLOPs, Pareto, input validation."""

from __future__ import annotations

import pytest
import torch

from tokensieve.bench import metrics, suites
from tokensieve.bench.cost import Shape, attention_flops, median_timed
from tokensieve.bench.ray_executor import check_reachable
from tokensieve.bench.report import pareto
from tokensieve.bench.runner import Cell, grid
from tokensieve.bench.store import Store
from tokensieve.errors import TokensieveError


def _row(key: str, quality: float) -> dict:
    return {"key": key, "version": "v", "model": "m", "task": "needle", "case_id": "c", "method": "x",
            "budget": 0.5, "status": "ok", "quality": quality, "metrics": {"a": 1}}


def test_store_keeps_the_first_row_of_a_key_and_survives_reopen(tmp_path):
    store = Store(tmp_path / "b.sqlite")
    store.put(_row("k1", 1.0))
    store.put(_row("k1", 0.0))  # a rerun of a finished cell must not duplicate or overwrite it
    store.put(_row("k2", 0.0))
    store.close()
    again = Store(tmp_path / "b.sqlite")
    rows = again.rows()
    assert [(r["key"], r["quality"]) for r in rows] == [("k1", 1.0), ("k2", 0.0)]
    assert again.done() == {"k1", "k2"}


def test_cell_key_depends_on_every_input_and_the_code_version():
    base = Cell("m", (("task", "needle"), ("tokens", 256)), "snapkv", 0.5)
    others = [Cell("m2", base.case, "snapkv", 0.5), Cell("m", (("task", "needle"), ("tokens", 512)), "snapkv", 0.5),
              Cell("m", base.case, "tova", 0.5), Cell("m", base.case, "snapkv", 0.25)]
    keys = {base.key("v1"), base.key("v2"), *(c.key("v1") for c in others)}
    assert len(keys) == 6
    assert base.key("v1") == Cell("m", base.case, "snapkv", 0.5).key("v1")


def test_grid_runs_full_once_per_case_and_keeps_peers_off_streaming():
    cases = [{"task": "needle", "tokens": 256, "depth": 0.5, "needle": 0},
             {"task": "streaming", "tokens": 1024, "chunk": 128, "window": 256}]
    cells = grid(["m"], cases, ["full", "snapkv", "kvpress:snapkv"], [0.25, 0.5])
    needle = [c for c in cells if c.case_dict["task"] == "needle"]
    stream = [c for c in cells if c.case_dict["task"] == "streaming"]
    assert sorted((c.method, c.budget) for c in needle) == [
        ("full", 1.0), ("kvpress:snapkv", 0.25), ("kvpress:snapkv", 0.5), ("snapkv", 0.25), ("snapkv", 0.5)]
    assert sorted((c.method, c.budget) for c in stream) == [("full", 1.0), ("snapkv", 0.25), ("snapkv", 0.5)]


@pytest.mark.parametrize("text", ["0", "1.5", "-0.2", "abc", "0.5,nan"])
def test_budgets_outside_unit_interval_are_one_clear_error(text):
    with pytest.raises(TokensieveError, match="budget"):
        suites.parse_budgets(text)


def test_unknown_method_task_and_suite_name_the_choices():
    with pytest.raises(TokensieveError, match="unknown method 'nope'.*snapkv"):
        suites.check_methods(["full", "nope"])
    with pytest.raises(TokensieveError, match="unknown kvpress press 'nope'"):
        suites.check_methods(["kvpress:nope"])
    with pytest.raises(TokensieveError, match="unknown task 'qa'"):
        suites.check_tasks(["needle", "qa"])
    with pytest.raises(TokensieveError, match="unknown suite"):
        suites.suite("huge")


def test_unreachable_ray_address_is_one_clear_error():
    with pytest.raises(TokensieveError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        check_reachable("127.0.0.1:1", timeout=2)
    with pytest.raises(TokensieveError, match="not host:port"):
        check_reachable("nonsense")


def test_fidelity_metrics_are_zero_for_identical_and_positive_for_different_logits():
    torch.manual_seed(0)
    ref = torch.randn(8, 50)
    target = torch.randint(0, 50, (8,))
    same = metrics.fidelity(ref, ref.clone(), target)
    assert same["kl"] == pytest.approx(0, abs=1e-6) and same["top1"] == 1.0 and same["ppl_ratio"] == pytest.approx(1)
    other = metrics.fidelity(ref, torch.randn(8, 50), target)
    assert other["kl"] > 0.1 and other["top1"] < 1.0


def test_attention_flops_shrink_with_the_kept_cache_and_grow_with_the_prompt():
    shape = Shape(layers=30, q_heads=9, head_dim=64)
    full = attention_flops(shape, 1000, [1000] * 30, 20)
    kept = attention_flops(shape, 1000, [250] * 30, 20)
    assert kept < full
    assert attention_flops(shape, 2000, [2000] * 30, 20) > 3.9 * attention_flops(shape, 1000, [1000] * 30, 1)
    chunked = attention_flops(shape, 1000, [250] * 30, 1, chunk=100)
    assert chunked < attention_flops(shape, 1000, [250] * 30, 1)


def test_median_timed_warms_up_then_takes_the_median():
    calls = iter([{"prefill_s": 100.0}, {"prefill_s": 3.0}, {"prefill_s": 1.0}, {"prefill_s": 2.0}])
    first, timing = median_timed(lambda: next(calls), repeats=3, warmup=1)
    assert first == {"prefill_s": 3.0}
    assert timing["prefill_s"] == 2.0 and timing["prefill_s_all"] == [3.0, 1.0, 2.0]


def test_pareto_front_drops_dominated_points():
    assert pareto([(1, 0.5), (2, 0.4), (0.5, 0.1), (3, 0.9), (3, 0.2)]) == [(0.5, 0.1), (1, 0.5), (3, 0.9)]
    # tokens/s: more is better
    assert pareto([(10, 0.5), (20, 0.4), (5, 0.9), (20, 0.1)], higher_x=True) == [(20, 0.4), (10, 0.5), (5, 0.9)]


def test_code_version_follows_the_method_files_only():
    from tokensieve.bench.runner import _method_files, code_version

    assert code_version("snapkv") == code_version("snapkv")
    assert len({code_version("snapkv"), code_version("hisa"), code_version("kvpress:snapkv")}) == 3
    names = {p.name for p in _method_files("pyramid")}
    assert {"pyramid.py", "snapkv.py"} <= names and "tova.py" not in names
    assert {"rectified.py", "hisa.py", "base.py"} <= {p.name for p in _method_files("rectified")}


def test_summary_never_pools_context_lengths():
    from tokensieve.bench.summary import summarise

    def row(case_id, quality, prefill):
        return {"model": "m", "task": "needle", "case_id": case_id, "method": "snapkv", "budget": 0.5,
                "status": "ok", "quality": quality, "metrics": {"prefill_s": prefill}}

    lines = summarise([row("needle/1024/d0.10/n0", 1.0, 1.0), row("needle/1024/d0.50/n1", 0.0, 3.0),
                       row("needle/8000/d0.10/n0", 0.0, 30.0)])
    assert [(ln.tokens, ln.n, ln.quality, ln.prefill_s) for ln in lines] == [(1024, 2, 0.5, 2.0), (8000, 1, 0.0, 30.0)]


def test_standard_suite_runs_the_long_cases_for_a_subset_and_options_replace_dimensions():
    from tokensieve.bench.command import plan

    cells = plan("standard", "smollm2-135m", None, None, None, None, None, None, None, echo=lambda _: None)
    assert len(cells) == len(set(cells))
    by_length: dict[int, set[str]] = {}
    for c in cells:
        by_length.setdefault(c.case_dict["tokens"], set()).add(c.method)
    assert {"full", "snapkv", "hisa", "random", "cluster"} <= by_length[1024]
    assert "random" not in by_length[8000] and {"full", "snapkv", "tokenselect"} <= by_length[8000]
    assert all(c.method in suites.TS_METHODS for c in cells if c.case_dict["task"] == "streaming")
    small = plan("standard", "smollm2-135m", "full,hisa", "0.25", "needle", "1024", "0.5", "0", None)
    assert {(c.method, c.budget, c.case_dict["tokens"]) for c in small} == {("full", 1.0, 1024), ("hisa", 0.25, 1024)}


def test_only_keeps_the_suite_cells_of_the_named_methods():
    from tokensieve.bench.command import plan

    every = plan("standard", "smollm2-135m", None, None, None, None, None, None, None, echo=lambda _: None)
    hisa = plan("standard", "smollm2-135m", None, None, None, None, None, None, None, echo=lambda _: None,
                only="hisa")
    assert hisa == [c for c in every if c.method == "hisa"] and any(c.case_dict["tokens"] == 8000 for c in hisa)
    with pytest.raises(TokensieveError, match="no cells"):
        plan("quick", "smollm2-135m", None, None, None, None, None, None, None, echo=lambda _: None, only="h2o")
