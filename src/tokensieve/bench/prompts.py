"""Prompt tasks: a case -> the prompt every method and peer sees, how long to decode, and how to score the answer.

RULER-style cases (`tokensieve.data.ruler`) and code cases (HumanEval, optionally behind real stdlib source as
repository context) run through `run_prompt`: one dense prefill per case, branched by every method that gives
the same answer from a branch (`run.branchable`); the others (H2O, chunked or rolling runs) prefill
on their own. Cells of one case run one after another, so a one-entry memo holds the prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from tokensieve.bench.cost import Shape, attention_flops, median_timed
from tokensieve.core.budget import Budget
from tokensieve.errors import TokensieveError
from tokensieve.methods import make
from tokensieve.models import cached_load
from tokensieve.run import Prefix, branchable, completion_prompt, prefill
from tokensieve.run import generate as ts_generate

BRANCH_TAIL = 64  # prompt tokens fed under each policy on its copy of the prefix (>= SnapKV's window of 32)
# Decode lengths: a single word or number needs a few tokens, a UUID up to 38, lists room for every item, code a
# whole body (tests/test_ruler.py checks each cap against the longest expected answer on a real tokenizer).
NEW_TOKENS = {"niah_single_uuid": 48, "niah_multivalue": 40, "niah_multiquery": 40, "vt": 32, "cwe": 56, "fwe": 24,
              "code": 320}
SINGLE_LINE = ("niah_single_word", "niah_single_number", "niah_single_uuid", "niah_multikey", "qa")
CODE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PromptTask:
    context: str
    question: str
    answer_prefix: str
    max_new_tokens: int
    stop_at_newline: bool
    expected: tuple[str, ...]
    metric: str  # "all" | "part" (RULER's string match) or "tests" (HumanEval: the problem's tests pass)
    plain: bool = False  # code: the prompt is the text itself, no Question/Answer frame
    problem: int | None = None  # HumanEval problem index

    def stop(self) -> Callable[[str], bool] | None:
        """When decoding may end early. RULER's string-match scores can only grow as the answer grows, so decoding
        stops once the answer holds every expected string: the score is the one the full decode would get."""
        if self.metric != "tests":
            from tokensieve.data.ruler import score

            return lambda text: score(self.expected, text, self.metric) >= 1.0
        from tokensieve.data.humaneval import truncate_completion

        return lambda text: truncate_completion(text) != text.rstrip()  # a stop sequence ended the body

    def score(self, answer: str) -> tuple[float, dict]:
        if self.metric == "tests":
            from tokensieve.bench.sandbox import run_program
            from tokensieve.data.humaneval import problems, program, truncate_completion

            outcome = run_program(program(problems()[self.problem], truncate_completion(answer)),
                                  timeout=CODE_TIMEOUT_S)
            return float(outcome.passed), {"tests": outcome.status, "tests_detail": outcome.detail[-300:]}
        from tokensieve.data.ruler import score

        return score(self.expected, answer, self.metric), {}


def case_id(case: dict) -> str:
    if case["task"] == "ruler":
        return f"ruler/{case['subtask']}/{case['tokens']}/{case['haystack']}/s{case['seed']}"
    return f"code/{case['context']}/p{case['problem']}"


@cache
def prompt_task(model: str, case_items: tuple) -> PromptTask:
    case = dict(case_items)
    _, tok = cached_load(model)
    if case["task"] == "ruler":
        from tokensieve.data.ruler import ruler_case

        rc = ruler_case(tok, case["subtask"], case["tokens"], case["seed"], case["haystack"])
        return PromptTask(rc.context, rc.question, rc.answer_prefix, NEW_TOKENS.get(rc.task, 16),
                          rc.task in SINGLE_LINE, tuple(rc.expected), rc.metric)
    if case["task"] == "code":
        from tokensieve.data.humaneval import problems
        from tokensieve.data.stdlib_corpus import stdlib_context

        problem = problems()[case["problem"]]
        repo = ""
        if case["context"]:
            room = case["context"] - len(tok(problem.prompt).input_ids)
            repo = stdlib_context(tok, room, case["problem"]) + "\n\n" if room > 0 else ""
        return PromptTask(repo + problem.prompt, "", "", NEW_TOKENS["code"], False, (problem.entry_point,),
                          "tests", plain=True, problem=case["problem"])
    raise TokensieveError(f"task '{case['task']}' is not a prompt task")


def prompt_ids(model: str, task: PromptTask) -> tuple[list[int], list[int]]:
    """The exact (context, question) token ids `generate` builds: what the kvpress peers receive."""
    _, tok = cached_load(model)
    ctx_text, q_text = completion_prompt(task.context, task.question, task.answer_prefix, task.plain)
    return list(tok(ctx_text).input_ids), list(tok(q_text, add_special_tokens=False).input_ids) if q_text else []


_PREFIX: dict[tuple, Prefix] = {}


def shared_prefix(model: str, case_items: tuple, task: PromptTask) -> Prefix:
    key = (model, case_items, task.max_new_tokens)
    if key not in _PREFIX:
        _PREFIX.clear()  # one case at a time: the grid runs a case's cells together
        _PREFIX[key] = prefill(model, task.context, task.question, answer_prefix=task.answer_prefix,
                               tail=BRANCH_TAIL, max_new_tokens=task.max_new_tokens, plain=task.plain)
    return _PREFIX[key]


def run_prompt(model: str, case: dict, method: str, budget: float, repeats: int,
               kv_dtype: str = "fp", weights: str = "fp32") -> tuple[float, dict]:
    case_items = tuple(sorted(case.items()))
    task = prompt_task(model, case_items)
    policy = make(method, budget=Budget(float(budget)))
    long_enough = sum(map(len, prompt_ids(model, task))) > BRANCH_TAIL  # a short prompt is prefilled whole
    full_precision = (kv_dtype, weights) == ("fp", "fp32")  # the shared prefix is prefilled so
    shared = long_enough and branchable(policy, BRANCH_TAIL) is None and full_precision
    prefix = shared_prefix(model, case_items, task) if shared else None

    def once() -> dict:
        r = ts_generate(model, task.context, task.question, policy, policy.budget, answer_prefix=task.answer_prefix,
                        max_new_tokens=task.max_new_tokens, stop_at_newline=task.stop_at_newline, stop=task.stop(),
                        plain=task.plain, prefix=prefix, kv_dtype=kv_dtype, weights=weights)
        s = r.stats
        return {"answer": r.answer, **{k: getattr(s, k) for k in (
            "prompt_tokens", "new_tokens", "prefill_s", "shared_prefill_s", "decode_tok_s", "peak_rss_mb",
            "kv_bytes_full", "kv_bytes_kept", "kv_bytes_end", "kept_tokens", "attended_tokens", "dense_fallbacks",
            "policy_state_bytes")}}

    first, timing = median_timed(once, repeats, warmup=0)
    quality, detail = task.score(first["answer"])
    out = {**first, **timing, **detail, "expected": list(task.expected), "branched": prefix is not None}
    net, _ = cached_load(model)
    out["attention_flops"] = attention_flops(Shape.of(net.config), out["prompt_tokens"], out["kept_tokens"],
                                             out["new_tokens"])
    return quality, out


def score_answer(task: PromptTask, answer: str) -> float:
    """A peer's answer scored the way ours are (quality only)."""
    return task.score(answer)[0]


