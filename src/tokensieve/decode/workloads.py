"""The decode workloads: code (HumanEval prompts), prose (essay continuation), structured output (JSON extraction
from a passage), and held-out code (`stdlib`: standard-library functions continued from their docstrings, a kind
no drafter was tuned on). Each has evaluation prompts and separate calibration text that warm-starts the drafters'
tables (never the evaluated prompts themselves); `stdlib` calibrates on HumanEval's, so it stays held out."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from tokensieve.errors import TokensieveError

WORKLOADS = ("code", "prose", "json", "stdlib")
STDLIB_PROMPTS = 64  # functions drawn (seeded) from the standard library's sources
CODE_CALIBRATION = 82  # HumanEval problems from here on calibrate; those before it are evaluated
PROSE_TOKENS = 384
NAMES = ("Alice Moreau", "Bilal Haddad", "Chen Wei", "Dara O'Neill", "Emeka Obi", "Farah Khan", "Goran Petrov",
         "Hana Sato", "Ivan Novak", "Julia Costa", "Kwame Mensah", "Lena Fischer", "Mateo Rossi", "Nadia Ahmed")
CITIES = ("Lisbon", "Nairobi", "Osaka", "Toronto", "Krakow", "Lima", "Hanoi", "Oslo", "Cairo", "Denver")
JOBS = ("nurse", "architect", "welder", "teacher", "pilot", "chemist", "baker", "lawyer", "farmer", "editor")


@dataclass(frozen=True)
class Prompt:
    context: str
    question: str
    plain: bool  # context + question verbatim (a continuation), else the Question/Answer frame
    answer_prefix: str = ""
    stop: Callable[[str], bool] | None = None


def _people(seed: int, n: int = 5) -> list[dict]:
    rng = random.Random(seed)
    return [{"name": name, "city": rng.choice(CITIES), "job": rng.choice(JOBS), "age": rng.randint(21, 70)}
            for name in rng.sample(NAMES, n)]


def _passage(people: list[dict], seed: int) -> str:
    rng = random.Random(seed + 1)
    forms = ("{name} is a {job} who lives in {city} and is {age} years old.",
             "At {age}, {name} works as a {job} in {city}.",
             "{name}, a {job} from {city}, turned {age} this year.")
    return " ".join(rng.choice(forms).format(**p) for p in people)


JSON_QUESTION = "List every person as a JSON array of objects with the keys name, city, job and age."


def prompt(workload: str, index: int) -> Prompt:
    if workload == "code":
        from tokensieve.data.humaneval import problems

        if not 0 <= index < CODE_CALIBRATION:
            raise TokensieveError(f"code prompts are HumanEval problems 0..{CODE_CALIBRATION - 1}, got {index}")
        return Prompt(problems()[index].prompt, "", plain=True)  # fixed length past the function, as Spec-Bench
    if workload == "prose":
        from tokensieve.data.corpus import essays

        if not 0 <= index < len(essays()) // 2:  # the second half calibrates
            raise TokensieveError(f"prose prompts are essays 0..{len(essays()) // 2 - 1}, got {index}")
        words = essays()[index].split()
        return Prompt(" ".join(words[: PROSE_TOKENS * 3 // 4]), "", plain=True)
    if workload == "json":
        people = _people(index)
        return Prompt(_passage(people, index), JSON_QUESTION, plain=False, answer_prefix="[",
                      stop=lambda text: "]" in text)
    if workload == "stdlib":
        functions = stdlib_functions()
        if not 0 <= index < len(functions):
            raise TokensieveError(f"stdlib prompts are functions 0..{len(functions) - 1}, got {index}")
        return Prompt(functions[index], "", plain=True)
    raise TokensieveError(f"unknown workload '{workload}': choose from {', '.join(WORKLOADS)}")


def calibration(workload: str, n: int = 40) -> list[str]:
    """Text of the workload's kind, disjoint from every evaluated prompt: HumanEval problems 82+ with their
    solutions, the last essays, passages of other seeds followed by their JSON."""
    if workload in ("code", "stdlib"):  # stdlib is held out: it calibrates on HumanEval
        from tokensieve.data.humaneval import problems

        return [p.prompt + p.canonical_solution for p in problems()[CODE_CALIBRATION:CODE_CALIBRATION + n]]
    if workload == "prose":
        from tokensieve.data.corpus import essays

        return [" ".join(e.split()[:1500]) for e in essays()[len(essays()) // 2:][:n]]
    if workload == "json":
        out = []
        for seed in range(10_000, 10_000 + n):
            people = _people(seed)
            out.append(f"{_passage(people, seed)}\n\nQuestion: {JSON_QUESTION}\nAnswer: "
                       + json.dumps(people))
        return out
    raise TokensieveError(f"unknown workload '{workload}': choose from {', '.join(WORKLOADS)}")


@cache
def stdlib_functions(count: int = STDLIB_PROMPTS, seed: int = 0) -> tuple[str, ...]:
    """`count` functions of the standard library (seeded draw over every top-level or method `def` with a docstring
    and at least 6 lines of body), each cut right after its docstring: the prompt a model continues."""
    import ast

    from tokensieve.data.stdlib_corpus import stdlib_files

    found = []
    for _, text in stdlib_files():
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        lines = text.splitlines(keepends=True)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or ast.get_docstring(node) is None:
                continue
            doc = node.body[0]
            if len(node.body) < 2 or node.end_lineno - doc.end_lineno < 6:
                continue
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            found.append("".join(lines[start:doc.end_lineno]))
    if len(found) < count:
        raise TokensieveError(f"the standard library yielded {len(found)} documented functions, {count} wanted")
    return tuple(random.Random(seed).sample(found, count))
