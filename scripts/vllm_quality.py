"""Issue 31's quality goal: the standard suite's RULER 4k cases through vLLM with the plugin, paired against our
own engine's stored cells for the same policy and budget (runs/standard.sqlite), on the same prompt ids.

    .venv/bin/python scripts/vllm_quality.py qwen2.5-coder-0.5b snapkv 0.125 [N=50] [OUT=runs/vllm-quality.json]

Each case: `prompts.prompt_ids` (context + question, exactly what `generate` and the kvpress peers see), greedy,
the task's token budget, stopping at a newline where the task does, scored by the task's own scorer. The kept count
is the plugin's (whole blocks, never above the budget but for the sinks' block)."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

import openai

from tokensieve.bench import prompts, stats, tasks
from tokensieve.bench.peers import vllm_engine
from tokensieve.bench.suites import ruler_cases
from tokensieve.vllm.plan import plan


def main(model: str, policy: str, budget: float, n: int = 50, out: str = "runs/vllm-quality.json") -> None:
    cases = ruler_cases([4096], n)
    db = sqlite3.connect("runs/standard.sqlite")
    ours = {row[0]: row[1] for row in db.execute(
        "SELECT case_id, quality FROM cells WHERE model = ? AND method = ? AND budget = ? AND status = 'ok'",
        (model, policy, budget))}
    rows = []
    with vllm_engine.server(model, max_model_len=8192) as url:
        client = openai.OpenAI(base_url=url, api_key="none", timeout=3600)
        for case in cases:
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
            quality = task.score(answer)[0]
            hole = plan(len(ids), budget, 128)
            rows.append({"case": tasks.case_id(case), "quality": quality, "ours": ours.get(tasks.case_id(case)),
                         "prompt_tokens": len(ids), "kept_tokens": hole.kept_tokens if hole else len(ids),
                         "seconds": round(time.perf_counter() - started, 1), "answer": answer[:200]})
            print(json.dumps(rows[-1]), flush=True)
    paired = [r for r in rows if r["ours"] is not None]
    comparison = stats.compare([r["ours"] for r in paired], [r["quality"] for r in paired])
    summary = {"model": model, "policy": policy, "budget": budget, "n": len(rows), "paired": len(paired),
               "vllm_mean": sum(r["quality"] for r in rows) / len(rows),
               "ours_mean": sum(r["ours"] for r in paired) / len(paired) if paired else None,
               "vllm_interval": bounds([r["quality"] for r in rows]),
               "ours_interval": bounds([r["ours"] for r in paired]) if paired else None,
               "diff": comparison.diff, "diff_low": comparison.low, "diff_high": comparison.high, "p": comparison.p,
               "kept_share": sum(r["kept_tokens"] for r in rows) / sum(r["prompt_tokens"] for r in rows),
               "command": " ".join([".venv/bin/python", *sys.argv])}
    Path(out).write_text(json.dumps({"summary": summary, "cases": rows}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


def bounds(values: list[float]) -> list[float]:
    found = stats.interval(values)
    return [found.low, found.high]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), *(int(a) for a in sys.argv[4:5]), *sys.argv[5:6])
