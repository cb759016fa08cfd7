"""RULER and code cases through the bench runner, on real models: the prefill is shared, the answer scored the
way RULER and HumanEval score it, and a kvpress press sees the very same prompt ids."""

import pytest

from tokensieve.bench import prompts
from tokensieve.bench.runner import Cell, run_cell
from tokensieve.bench.tasks import case_id

NIAH = {"task": "ruler", "subtask": "niah_single_number", "tokens": 1024, "seed": 0, "haystack": "essays"}


def _cell(case: dict, method: str, budget: float, model: str = "smollm2-135m") -> dict:
    return run_cell(Cell(model, tuple(sorted(case.items())), method, budget))


def test_ruler_cells_share_one_prefill_and_only_exact_branches_use_it():
    full = _cell(NIAH, "full", 1.0)
    assert full["status"] == "ok" and full["case_id"] == case_id(NIAH) == "ruler/niah_single_number/1024/essays/s0"
    assert full["quality"] == 1.0, full["metrics"]["answer"]  # SmolLM2 finds a number at 1k
    m = full["metrics"]
    assert m["branched"] and 0 < m["shared_prefill_s"] <= m["prefill_s"]
    assert m["new_tokens"] < prompts.NEW_TOKENS.get("niah_single_number", 16)  # stopped once the number was out
    snap = _cell(NIAH, "snapkv", 0.25)["metrics"]
    assert snap["branched"] and snap["shared_prefill_s"] == m["shared_prefill_s"]  # the same prefix, reused
    assert max(snap["kept_tokens"]) <= -(-snap["prompt_tokens"] // 4)
    h2o = _cell(NIAH, "h2o", 0.25)["metrics"]  # accumulates over every prompt query: prefills on its own
    assert not h2o["branched"] and h2o["shared_prefill_s"] == 0


def test_code_cell_runs_the_problem_tests_on_the_completion():
    case = {"task": "code", "context": 0, "problem": 2}  # truncate_number: Qwen-Coder solves it
    row = _cell(case, "full", 1.0, "qwen2.5-coder-0.5b")
    assert row["case_id"] == "code/0/p2"
    assert row["quality"] == 1.0 and row["metrics"]["tests"] == "passed", row["metrics"]["answer"]
    assert row["metrics"]["answer"].startswith("    ")  # the body keeps its indentation
    short = _cell({"task": "code", "context": 0, "problem": 53}, "snapkv", 0.5, "qwen2.5-coder-0.5b")
    assert short["status"] == "ok" and short["metrics"]["prompt_tokens"] <= prompts.BRANCH_TAIL
    assert not short["metrics"]["branched"]  # too short to branch from: prefilled whole


def test_code_case_with_repository_context_fills_its_length_with_real_stdlib_files(qwen05):
    _, tok = qwen05
    task = prompts.prompt_task("qwen2.5-coder-0.5b", (("context", 2048), ("problem", 5), ("task", "code")))
    n = len(tok(task.context).input_ids)
    assert 0.9 * 2048 <= n <= 2048 and "# file: " in task.context
    assert task.context.endswith(__import__("tokensieve.data.humaneval", fromlist=["x"]).problems()[5].prompt)


@pytest.mark.peers("kvpress")
def test_a_press_answers_the_same_ruler_prompt():
    row = _cell(NIAH, "kvpress:snapkv", 0.5)
    assert row["status"] == "ok", row["metrics"].get("error")
    ours = prompts.prompt_ids("smollm2-135m", prompts.prompt_task("smollm2-135m", tuple(sorted(NIAH.items()))))
    assert row["metrics"]["prompt_tokens"] == len(ours[0]) + len(ours[1])
    assert row["quality"] in (0.0, 1.0)
