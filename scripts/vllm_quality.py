"""Issue 31's quality goal: the standard suite's RULER 4k cases through vLLM with the plugin, paired against our
own engine's stored cells (runs/standard.sqlite, else runs/kv-store.sqlite, which holds the same 50 cases) for the
same policy and budget, and against full, on the same prompt ids.

    .venv/bin/python scripts/vllm_quality.py qwen2.5-coder-0.5b snapkv 0.125 [N=50] [OUT=runs/vllm-quality.json]
        [BLOCK=128]

Each case: `prompts.prompt_ids` (context + question, exactly what `generate` and the kvpress peers see), greedy,
the task's token budget, stopping at a newline where the task does, scored by the task's own scorer. The kept count
is the plugin's (whole blocks, never above the budget but for the sinks' block); a selector (quest_paged) keeps
every token, and its attended count at the first decode step is recorded instead. BLOCK is vLLM's block size; our
stored quest_paged cells use 128-token pages, so at another block size a selector is paired with full and with our
per-head `quest` only. Cases already in OUT are not run again, so a stopped run resumes, and a finished one only
recomputes the summary."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

import openai

from tokensieve.bench import prompts, stats, tasks
from tokensieve.bench.cell import code_version
from tokensieve.bench.peers import vllm_engine
from tokensieve.bench.suites import ruler_cases
from tokensieve.vllm.plan import SELECTORS, plan, step_pages


def stored(model: str, method: str, budget: float, cases: list[str]) -> dict[str, float]:
    """The method's cells of its current code version (a store keeps older versions' cells beside them), from the
    first store that holds every case."""
    for path in ("runs/standard.sqlite", "runs/kv-store.sqlite"):
        found = {case: quality for case, quality in sqlite3.connect(path).execute(
            "SELECT case_id, quality FROM cells WHERE model = ? AND method = ? AND budget = ? AND status = 'ok' "
            "AND version = ?", (model, method, budget, code_version(method)))}
        if set(cases) <= set(found):
            return found
    raise SystemExit(f"no store holds all {len(cases)} cells of {method} at {budget} on {model} at its current "
                     "version: run it in our engine first")


def run_case(client, model: str, case: dict, policy: str, budget: float, block: int) -> dict:
    task = prompts.prompt_task(model, tuple(sorted(case.items())))
    context, question = prompts.prompt_ids(model, task)
    ids = context + question
    started = time.perf_counter()
    choice = client.completions.create(
        model=model, prompt=ids, max_tokens=task.max_new_tokens, temperature=0,
        extra_body={"vllm_xargs": {"tokensieve_policy": policy, "tokensieve_budget": budget},
                    "stop_token_ids": list(tasks.newline_ids(model)) if task.stop_at_newline else []},
    ).choices[0]
    answer = choice.text if task.plain else choice.text.strip()
    hole = plan(len(ids), budget, block) if policy not in SELECTORS else None
    row = {"case": tasks.case_id(case), "quality": task.score(answer)[0], "prompt_tokens": len(ids),
           "kept_tokens": hole.kept_tokens if hole else len(ids), "seconds": round(time.perf_counter() - started, 1),
           "answer": answer[:200]}
    if policy in SELECTORS:
        pages = step_pages(len(ids) + 1, budget, block)
        row["attended_tokens"] = pages.attended_tokens if pages else len(ids) + 1
    return row


def summary(rows: list[dict], model: str, policy: str, budget: float, block: int) -> dict:
    cases = [r["case"] for r in rows]
    references = {"full": stored(model, "full", 1.0, cases)}
    if policy not in SELECTORS or block == 128:
        references["ours"] = stored(model, policy, budget, cases)
    if policy == "quest_paged":
        references["quest"] = stored(model, "quest", budget, cases)
    vllm = [r["quality"] for r in rows]
    out = {"model": model, "policy": policy, "budget": budget, "block_size": block, "n": len(rows),
           "kept_share": sum(r["kept_tokens"] for r in rows) / sum(r["prompt_tokens"] for r in rows),
           "attended_share": sum(r.get("attended_tokens", r["kept_tokens"]) for r in rows)
           / sum(r["prompt_tokens"] + ("attended_tokens" in r) for r in rows),  # a selector's: at the first step
           "vllm": described(vllm)}
    for name, reference in references.items():
        paired = [reference[r["case"]] for r in rows]
        versus = stats.compare(paired, vllm)
        out[name] = described(paired) | {"vllm_minus_it": [versus.diff, versus.low, versus.high], "p": versus.p}
    return out


def described(values: list[float]) -> dict:
    found = stats.interval(values)
    return {"mean": sum(values) / len(values), "interval": [found.low, found.high]}


def main(model: str, policy: str, budget: float, n: int = 50, out: str = "runs/vllm-quality.json",
         block: int = 128) -> None:
    path = Path(out)
    rows = json.loads(path.read_text())["cases"] if path.is_file() else []
    cases = [c for c in ruler_cases([4096], n) if tasks.case_id(c) not in {r["case"] for r in rows}]
    if cases:
        with vllm_engine.server(model, max_model_len=8192, args=("--block-size", str(block))) as url:
            client = openai.OpenAI(base_url=url, api_key="none", timeout=3600)
            for case in cases:
                rows.append(run_case(client, model, case, policy, budget, block))
                print(json.dumps(rows[-1]), flush=True)
                path.write_text(json.dumps({"cases": rows}, indent=1) + "\n")
    result = summary(rows, model, policy, budget, block) | {"command": " ".join([".venv/bin/python", *sys.argv])}
    path.write_text(json.dumps({"summary": result, "cases": rows}, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), *(int(a) for a in sys.argv[4:5]), *sys.argv[5:6],
         *(int(a) for a in sys.argv[6:7]))
