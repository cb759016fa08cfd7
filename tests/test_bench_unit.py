"""Bench harness parts that need no model: store, grid, metrics, FLOPs, Pareto, input validation."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import torch

from tokensieve.bench import metrics, suites
from tokensieve.bench.cost import Shape, attention_flops, median_timed
from tokensieve.bench.peers.venv import PeerFailed
from tokensieve.bench.ray_executor import check_reachable
from tokensieve.bench.report import pareto
from tokensieve.bench.runner import Cell, grid, pending, run_cell, sweep
from tokensieve.bench.store import Store
from tokensieve.errors import ResourceError, TokensieveError


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


def test_rekey_moves_rows_whole_with_their_note_and_touches_no_other(tmp_path):
    store = Store(tmp_path / "b.sqlite")
    for key, quality in (("old1", 1.0), ("old2", 0.0), ("other", 0.5)):
        store.put(_row(key, quality))
    store.rekey([("old1", "new1", "v2"), ("old2", "new2", "v2")], ("carried from abc", "2 cells"))
    rows = {r["key"]: r for r in store.rows()}
    assert set(rows) == {"new1", "new2", "other"} == store.done()
    assert (rows["new1"]["version"], rows["new1"]["quality"], rows["new1"]["metrics"]) == ("v2", 1.0, {"a": 1})
    assert rows["other"]["version"] == "v" and store.meta("carried from abc") == "2 cells"
    with pytest.raises(sqlite3.IntegrityError):  # a move onto a stored key fails whole: nothing moves
        store.rekey([("other", "new9", "v3"), ("new1", "new2", "v3")], ("bad", "-"))
    assert {r["key"] for r in store.rows()} == {"new1", "new2", "other"} and store.meta("bad") is None


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


@pytest.fixture
def source_copy(tmp_path, monkeypatch):
    """A private copy of the package sources as the code-version root, so a test can edit method files."""
    from tokensieve.bench import cell

    root = tmp_path / "tokensieve"
    shutil.copytree(cell.ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cell, "ROOT", root)
    cell.code_version.cache_clear()
    yield root
    cell.code_version.cache_clear()


def test_code_version_follows_the_method_files_only(source_copy):
    from tokensieve.bench.cell import _method_files, code_version

    methods = ("snapkv", "pyramid", "tova", "hisa", "rectified", "kvpress:snapkv")

    def versions() -> dict[str, str]:
        code_version.cache_clear()
        return {m: code_version(m) for m in methods}

    def edit(relative: str) -> dict[str, str]:
        with (source_copy / relative).open("a") as f:
            f.write("\n# edited\n")
        return versions()

    before = versions()
    assert len(set(before.values())) == len(methods)
    after = edit("kv/snapkv.py")  # snapkv and pyramid (built on it) change; nothing else does
    assert {m for m in methods if after[m] != before[m]} == {"snapkv", "pyramid"}
    again = edit("sparse/hisa.py")  # hisa and rectified (a HISA variant)
    assert {m for m in methods if again[m] != after[m]} == {"hisa", "rectified"}
    peer = edit("bench/peers/workers/kvpress_worker.py")  # the kvpress adapter only
    assert {m for m in methods if peer[m] != again[m]} == {"kvpress:snapkv"}
    shared = edit("run/loop.py")  # the shared engine: every cell
    assert all(shared[m] != peer[m] for m in methods)
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


def test_summary_never_pools_streaming_variants():
    """True and rolling positions of one method are two lines, named with their options, not one averaged."""
    from tokensieve.bench.summary import summarise
    from tokensieve.bench.tasks import case_id

    base = {"task": "streaming", "tokens": 24576, "chunk": 1, "window": 8192, "evict_every": 32}
    rows = [{"model": "m", "task": "streaming", "case_id": case_id(case), "method": "streaming_llm", "budget": 0.125,
             "status": "ok", "quality": None, "metrics": {"ppl": ppl}}
            for case, ppl in ((base, 113.0), ({**base, "positions": "rolling"}, 24.0))]
    lines = summarise(rows)
    assert sorted((ln.method, ln.extra["ppl"]) for ln in lines) == [
        ("streaming_llm (evict_every=32)", 113.0), ("streaming_llm (positions=rolling, evict_every=32)", 24.0)]


def test_needle_suite_runs_the_long_cases_for_a_subset_and_options_replace_dimensions():
    from tokensieve.bench.command import plan

    cells = plan("needles-v1", "smollm2-135m", None, None, None, None, None, None, None, echo=lambda _: None)
    assert len(cells) == len(set(cells))
    by_length: dict[int, set[str]] = {}
    for c in cells:
        by_length.setdefault(c.case_dict["tokens"], set()).add(c.method)
    assert {"full", "snapkv", "hisa", "random", "cluster"} <= by_length[1024]
    assert "random" not in by_length[8000] and {"full", "snapkv", "tokenselect"} <= by_length[8000]
    assert all(c.method in suites.TS_METHODS for c in cells if c.case_dict["task"] == "streaming")
    small = plan("needles-v1", "smollm2-135m", "full,hisa", "0.25", "needle", "1024", "0.5", "0", None)
    assert {(c.method, c.budget, c.case_dict["tokens"]) for c in small} == {("full", 1.0, 1024), ("hisa", 0.25, 1024)}


def test_only_keeps_the_suite_cells_of_the_named_methods():
    from tokensieve.bench.command import plan

    every = plan("needles-v1", "smollm2-135m", None, None, None, None, None, None, None, echo=lambda _: None)
    hisa = plan("needles-v1", "smollm2-135m", None, None, None, None, None, None, None, echo=lambda _: None,
                only="hisa")
    assert hisa == [c for c in every if c.method == "hisa"] and any(c.case_dict["tokens"] == 8000 for c in hisa)
    with pytest.raises(TokensieveError, match="no cells"):
        plan("quick", "smollm2-135m", None, None, None, None, None, None, None, echo=lambda _: None, only="h2o")


def test_shards_partition_a_part_by_case_and_keep_each_case_whole(monkeypatch):
    from tokensieve.bench.command import plan
    from tokensieve.bench.peers import kvpress

    monkeypatch.setattr(kvpress, "available", lambda: True)
    args = ("standard", None, None, None, None, None, None, None, None)
    every = plan(*args, echo=lambda _: None, parts="3")
    halves = [plan(*args, echo=lambda _: None, parts="3", shard=f"{k}/2") for k in (1, 2)]
    assert sorted(halves[0] + halves[1], key=every.index) == every and not set(halves[0]) & set(halves[1])
    for half in halves:  # all eight presses of a case in the same shard; the cases split evenly
        per_case = {c.case: {x.method for x in half if x.case == c.case} for c in half}
        assert all(len(methods) == 8 for methods in per_case.values()) and len(per_case) == 25
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(TokensieveError, match="--shard takes K/N"):
            plan(*args, echo=lambda _: None, shard=bad)


def test_subtasks_keep_only_that_subtasks_cases_with_all_their_methods(monkeypatch):
    from tokensieve.bench.command import plan
    from tokensieve.bench.peers import kvpress

    monkeypatch.setattr(kvpress, "available", lambda: True)
    args = ("standard", None, None, None, None, None, None, None, None)
    every = plan(*args, echo=lambda _: None)
    uuid = plan(*args, echo=lambda _: None, subtasks="niah_single_uuid")
    assert uuid == [c for c in every if c.case_dict.get("subtask") == "niah_single_uuid"]
    cases: dict[tuple, set] = {}
    for c in uuid:
        cases.setdefault((c.model, c.case_dict["tokens"]), set()).add(c.case)
    assert {k: len(v) for k, v in cases.items()} == {  # 5 of 50 per length (parts 1 and 3 share 4k), 1 of 6, 1 of 3
        ("smollm2-135m", 1024): 5, ("smollm2-135m", 2048): 5, ("smollm2-135m", 4096): 5,
        ("qwen2.5-coder-0.5b", 4096): 5, ("qwen2.5-coder-0.5b", 16384): 1, ("qwen2.5-coder-0.5b", 32000): 1}
    assert len(uuid) == 5 * 3 * 19 + 5 * 21 + 5 * 8 + 2 * 3  # parts 1-4: their cells per case
    for bad in ("uuid", ",", "niah_single_uuid,nope"):
        with pytest.raises(TokensieveError, match="--subtasks takes RULER subtasks"):
            plan(*args, echo=lambda _: None, subtasks=bad)
    with pytest.raises(TokensieveError, match="no RULER cases of these subtasks"):
        plan("standard", None, None, None, "needle", None, None, None, None, echo=lambda _: None, subtasks="qa")


def test_standard_suite_has_fifty_cases_per_cell_for_the_main_methods_on_both_models(monkeypatch):
    from tokensieve.bench.command import plan
    from tokensieve.bench.peers import kvpress

    monkeypatch.setattr(kvpress, "available", lambda: True)
    cells = plan("standard", None, None, None, None, None, None, None, None, echo=lambda _: None)
    assert len(cells) == len(set(cells))
    cases: dict[tuple, set] = {}
    for c in cells:
        if c.case_dict["task"] == "ruler":
            cases.setdefault((c.model, c.case_dict["tokens"], c.method, c.budget), set()).add(c.case)
    for model, lengths in (("smollm2-135m", (1024, 2048, 4096)), ("qwen2.5-coder-0.5b", (4096,))):
        for tokens in lengths:
            for method in suites.MAIN_METHODS:
                for budget in ([1.0] if method == "full" else [0.125, 0.25, 0.5]):
                    assert len(cases[(model, tokens, method, budget)]) >= 50, (model, tokens, method, budget)
    presses = {c.method for c in cells if kvpress.is_peer(c.method)}
    assert {"kvpress:expected_attention", "kvpress:snapkv", "kvpress:tova", "kvpress:streaming_llm",
            "kvpress:knorm", "kvpress:kvzip"} <= presses and len(presses) >= 7
    subtasks = {c.case_dict["subtask"] for c in cells if c.case_dict["task"] == "ruler"}
    assert subtasks == set(suites.RULER_SUBTASKS)
    qwen = {c.case_dict["tokens"] for c in cells if c.model == "qwen2.5-coder-0.5b"}
    assert qwen == {4096, 16384, 32000}
    # the extended suite holds the rest: every other method, Qwen at 2k and 8k, and code behind 4k-16k of source
    extended = plan("extended", None, None, None, None, None, None, None, None, echo=lambda _: None)
    assert not set(extended) & set(cells)
    assert set(suites.OTHER_METHODS) <= {c.method for c in extended}
    assert {c.case_dict["context"] for c in extended if c.case_dict["task"] == "code"} == {0, 4096, 8192, 16384}
    assert {c.case_dict["tokens"] for c in extended if c.model == "qwen2.5-coder-0.5b"
            and c.case_dict["task"] == "ruler"} == {2048, 4096, 8192}


NEEDLE = (("depth", 0.5), ("needle", 0), ("task", "needle"), ("tokens", 256))


@pytest.fixture
def fake_method(monkeypatch):
    """Cells run a fake method instead of a model: `outcomes[method]` is its (quality, metrics) or the exception
    it raises; `calls` lists the methods run, in order."""
    from tokensieve.bench import cell

    outcomes: dict[str, object] = {}
    calls: list[str] = []

    def execute(c: Cell) -> tuple[float | None, dict]:
        calls.append(c.method)
        outcome = outcomes[c.method]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(cell, "_execute", execute)
    return outcomes, calls


@pytest.mark.parametrize("error", [
    PeerFailed("kvpress worker died (exit code -9)"), TokensieveError("budget 2 is not supported here"),
    ResourceError("out of memory loading m"), MemoryError("cannot allocate"),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory: out of memory"),
], ids=lambda e: type(e).__name__)
def test_a_method_failure_is_a_failed_row_with_its_error(fake_method, error):
    outcomes, _ = fake_method
    outcomes["m1"] = error
    row = run_cell(Cell("m", NEEDLE, "m1", 0.5), version="v")
    assert row["status"] == "failed" and row["quality"] is None
    assert str(error) in row["metrics"]["error"] and row["metrics"]["cell_s"] >= 0


@pytest.mark.parametrize("error", [AttributeError("'NoneType' object has no attribute 'keys'"),
                                   TypeError("attend() missing 1 required argument"), KeyError("kept_tokens"),
                                   RuntimeError("The size of tensor a (5) must match the size of tensor b (4)")],
                         ids=lambda e: type(e).__name__)
def test_a_bug_in_tokensieve_propagates_instead_of_becoming_a_row(fake_method, error):
    outcomes, _ = fake_method
    outcomes["m1"] = error
    with pytest.raises(type(error)):
        run_cell(Cell("m", NEEDLE, "m1", 0.5), version="v")


def test_a_bug_stops_the_sweep_and_stores_no_row_for_it(tmp_path, fake_method):
    outcomes, calls = fake_method
    outcomes |= {"m1": (1.0, {}), "m2": AttributeError("bug"), "m3": (1.0, {})}
    store = Store(tmp_path / "b.sqlite")
    cells = [Cell("m", NEEDLE, m, 0.5) for m in ("m1", "m2", "m3")]
    with pytest.raises(AttributeError):
        sweep(cells, store)
    assert calls == ["m1", "m2"] and [r["method"] for r in store.rows()] == ["m1"]


def test_failed_cells_are_done_until_retry_failed_reruns_them(tmp_path, fake_method):
    outcomes, calls = fake_method
    outcomes |= {"m1": (1.0, {}), "m2": PeerFailed("worker died")}
    store = Store(tmp_path / "b.sqlite")
    cells = [Cell("m", NEEDLE, m, 0.5) for m in ("m1", "m2")]
    assert sweep(cells, store) == 2
    outcomes["m2"] = (0.5, {"answer": "x"})  # the peer works now
    assert sweep(cells, store) == 0 and calls == ["m1", "m2"]  # a plain rerun keeps the failed row
    assert pending(cells, store, retry_failed=True) == [cells[1]]
    assert sweep(cells, store, retry_failed=True) == 1 and calls == ["m1", "m2", "m2"]
    rows = {r["method"]: r for r in store.rows()}
    assert len(rows) == len(store.rows()) == 2  # replaced, not duplicated
    assert rows["m2"]["status"] == "ok" and rows["m2"]["quality"] == 0.5 and rows["m2"]["key"] == cells[1].key()
    assert sweep(cells, store, retry_failed=True) == 0  # ok rows are never re-run


def test_a_stored_ok_row_is_never_replaced_but_a_failed_one_is(tmp_path):
    store = Store(tmp_path / "b.sqlite")
    store.put({**_row("k1", 1.0)})
    store.put({**_row("k1", 0.0), "status": "failed"})  # must not clobber the finished row
    store.put({**_row("k2", 0.0), "status": "failed", "metrics": {"error": "boom"}})
    assert store.done(include_failed=False) == {"k1"} and store.done() == {"k1", "k2"}
    store.put(_row("k2", 0.75))
    assert [(r["key"], r["status"], r["quality"]) for r in store.rows()] == [("k1", "ok", 1.0), ("k2", "ok", 0.75)]


def _bench_row(method: str, budget: float, metrics: dict, task: str = "needle", case: str = "needle/400/d0.50/n0",
               status: str = "ok") -> dict:
    return {"model": "m", "task": task, "case_id": case, "method": method, "budget": budget, "status": status,
            "quality": 1.0, "metrics": metrics}


def test_budget_check_compares_the_real_budget_with_the_nominal_one():
    from tokensieve.bench.summary import budget_check

    needle = {"prompt_tokens": 400}
    assert budget_check(_bench_row("snapkv", 0.25, {**needle, "kept_tokens": [100] * 30})) == (100, 100)
    assert budget_check(_bench_row("snapkv", 0.25, {**needle, "kept_tokens": [100] * 29 + [130]})) == (130, 100)
    # a dynamic selector keeps the whole prompt: what counts is what one query attended
    hisa = {**needle, "kept_tokens": [400] * 30, "attended_tokens": {"mean": 95.5, "max": 120}}
    assert budget_check(_bench_row("hisa", 0.25, hisa)) == (120, 100)
    # its budget is a share of what the query sees: 11 decode steps after the first token see up to 411 tokens
    grown = {**hisa, "new_tokens": 12, "attended_tokens": {"mean": 101.5, "max": 103}}
    assert budget_check(_bench_row("hisa", 0.25, grown)) == (103, 103)
    assert budget_check(_bench_row("hisa", 0.25, {**grown, "attended_tokens": {"max": 104}})) == (104, 103)
    assert budget_check(_bench_row("hisa", 0.25, {**needle, "kept_tokens": [400] * 30})) is None  # older row
    pyramid = {**needle, "kept_tokens": [190, 160, 130, 100, 70, 40, 10]}  # per-layer average: 100
    assert budget_check(_bench_row("pyramid", 0.25, pyramid)) == (100, 100)
    assert budget_check(_bench_row("full", 1.0, {**needle, "kept_tokens": [400] * 30})) is None
    assert budget_check(_bench_row("snapkv", 0.25, {"error": "x"}, status="failed")) is None
    assert budget_check(_bench_row("kvpress:snapkv", 0.25, {**needle, "kept_tokens": [99] * 30})) == (99, 100)
    fidelity = _bench_row("tova", 0.5, {"kept_tokens": [1025] * 30}, "fidelity", "fidelity/2048+128/o0")
    assert budget_check(fidelity) == (1025, 1024)
    fed = _bench_row("hisa", 0.25, {"attended_tokens": {"max": 50}}, "fidelity", "fidelity/192+8/o3")
    assert budget_check(fed) == (50, 50)  # the 7th continuation token's query sees 199 tokens
    stream = _bench_row("h2o", 0.125, {"kept_tokens": [512] * 30}, "streaming", "streaming/24576/c512/w4096")
    assert budget_check(stream) == (512, 512)  # the budget is a share of the window, not of the stream
    assert budget_check(_bench_row("snapkv", 0.1, {"prompt_tokens": 401, "kept_tokens": [41]})) == (41, 41)


def test_report_flags_cells_over_budget_and_tolerates_rows_without_the_counters():
    from tokensieve.bench.report import OVER, OVER_NOTE, markdown
    from tokensieve.bench.summary import summarise

    base = {"prompt_tokens": 400, "prefill_s": 1.0}
    rows = [_bench_row("full", 1.0, {**base, "kept_tokens": [400] * 4}),
            _bench_row("snapkv", 0.25, {**base, "kept_tokens": [100] * 4}),
            _bench_row("snapkv", 0.25, {**base, "kept_tokens": [100, 100, 100, 140]}, case="needle/400/d0.10/n0"),
            _bench_row("hisa", 0.25, {**base, "kept_tokens": [400] * 4,
                                      "attended_tokens": {"mean": 100.0, "max": 100}, "dense_fallbacks": 0}),
            _bench_row("tokenselect", 0.25, {**base, "kept_tokens": [400] * 4}),  # older row: no counters
            _bench_row("snapkv", 0.25, {"error": "boom"}, status="failed", case="needle/400/d0.90/n0")]
    text = markdown(summarise(rows), rows)
    header = next(ln for ln in text.splitlines() if ln.startswith("| model |"))
    column = [c.strip() for c in header.strip("|").split("|")].index(OVER)
    cells = {ln.split("|")[3].strip(): [c.strip() for c in ln.strip("|").split("|")][column]
             for ln in text.splitlines() if ln.startswith("| m |")}
    assert cells == {"full": "—", "snapkv": "⚠ 1/2 (140 > 100 tok)", "hisa": "no", "tokenselect": "—"}
    assert text.count(OVER_NOTE) == 1
    fine = [r for r in rows if "140" not in str(r["metrics"])]
    assert "⚠" not in markdown(summarise(fine), fine) and OVER_NOTE not in markdown(summarise(fine), fine)


def test_report_prints_the_note_once_whatever_command_it_is_given():
    from tokensieve.bench.report import _generated_by

    note = "The standard suite, 509 cells."
    for command in ("tokensieve report --db r.sqlite --out docs", f"tokensieve report --db r.sqlite --note '{note}'"):
        line = _generated_by(command, note)
        assert note not in line and "--note …" in line and "--db r.sqlite" in line
    assert _generated_by("tokensieve report --db r.sqlite", "") == "Generated by `tokensieve report --db r.sqlite`"


@pytest.mark.parametrize(("script", "message"), [
    ("import sys; sys.stdin.readline(); print('loading weights...', flush=True)", "other than JSON"),
    ("import sys; sys.stdin.readline(); sys.exit(3)", "died (exit code 3)"),
    ("import sys; sys.stdin.readline(); print('{\"ok\": false, \"error\": \"press raised\"}', flush=True)",
     "press raised"),
])
def test_a_misbehaving_peer_worker_is_a_peer_failure(tmp_path, script, message):
    import sys

    from tokensieve.bench.peers.venv import JsonLinesWorker, PeerVenv

    path = tmp_path / "worker.py"
    path.write_text(script)
    worker = JsonLinesWorker("fake", PeerVenv("fake", "fake", "TOKENSIEVE_FAKE_VENV", ()), path, Path(sys.executable))
    try:
        with pytest.raises(PeerFailed, match=re.escape(message)):
            worker.call({"op": "load"})
    finally:
        worker.close()


def test_store_lists_every_finished_sweep_command(tmp_path):
    """A suite run part by part (or sharded by length) is several commands; the report names them all."""
    from tokensieve.bench.store import Store

    store = Store(tmp_path / "b.sqlite")
    assert store.commands() == []
    for command in ("tokensieve bench --suite standard --parts 1", "tokensieve bench --suite standard --parts 3",
                    "tokensieve bench --suite standard --parts 1"):
        store.add_command(command)
    assert store.commands() == ["tokensieve bench --suite standard --parts 1",
                                "tokensieve bench --suite standard --parts 3"]
    assert store.meta("command") == "tokensieve bench --suite standard --parts 1"
    store.close()


def test_a_refactor_alias_keeps_the_stored_version_and_an_edit_still_rekeys(source_copy, monkeypatch):
    from tokensieve.bench import cell, versions

    before = {"snapkv": cell.code_version("snapkv"), "tova": cell.code_version("tova")}
    with (source_copy / "kv" / "snapkv.py").open("a") as f:  # a change of source, said to change no behaviour
        f.write("\n# moved a comment\n")
    cell.code_version.cache_clear()
    raw = cell.raw_version("snapkv")
    assert cell.code_version("snapkv") == raw != before["snapkv"]  # without an alias: a new version, re-keyed
    monkeypatch.setattr(versions, "method_strings", lambda: ["snapkv", "tova"])
    found = versions.aliases(before)
    assert found == {raw: before["snapkv"]}  # tova's sources did not change: no entry
    monkeypatch.setitem(cell.ALIASES, raw, before["snapkv"])
    cell.code_version.cache_clear()
    assert cell.code_version("snapkv") == before["snapkv"] and cell.code_version("tova") == before["tova"]
    with (source_copy / "kv" / "snapkv.py").open("a") as f:  # a later real edit is a new version again
        f.write("\n# edited\n")
    cell.code_version.cache_clear()
    assert cell.code_version("snapkv") not in before.values()


def test_a_module_named_in_the_version_must_exist(source_copy):
    from tokensieve.bench import cell

    (source_copy / "bench" / "sandbox.py").unlink()
    cell.code_version.cache_clear()
    with pytest.raises(TokensieveError, match="module tokensieve.bench.sandbox is not under"):
        cell.code_version("snapkv")


def test_a_serving_method_names_its_storage_precision_and_sends_it_with_the_request():
    from tokensieve.bench.serving import Method

    method = Method.parse("quest@int4:0.125")
    assert (method.policy, method.budget, method.kv_dtype) == ("quest", 0.125, "int4")
    assert method.label == "quest@0.125/int4" and Method.parse("full@int8").label == "full/int8"
    assert method.options() == {"policy": "quest", "budget": 0.125, "kv_dtype": "int4"}
    assert Method.parse("snapkv:0.25").label == "snapkv@0.25"  # fp keeps its old label (stored results)
    with pytest.raises(TokensieveError, match="unknown kv dtype 'int3'"):
        Method.parse("quest@int3:0.125")
