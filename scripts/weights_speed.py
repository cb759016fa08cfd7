"""Plain greedy decoding under each weight precision (`--weights`), per prompt in the same run: decode tokens/s over
fp32's, and how far the tokens agree with fp32's. Prints one JSON line per prompt, then per precision the geometric
mean speed-up with a bootstrap 95 % interval over prompts, prompts with identical tokens, the mean agreeing
prefix, and the bytes each model's parameters and buffers hold.

    .venv/bin/python scripts/weights_speed.py MODEL WORKLOAD PROMPTS NEW_TOKENS [WEIGHTS]

WEIGHTS: comma-separated, default "bf16,int8" (fp32 always runs, first in each round); a "+kernel" suffix runs
with the decode kernel (`decode_kernel=True`: the attention kernel, and int8's compiled small products), e.g.

    .venv/bin/python scripts/weights_speed.py qwen2.5-coder-0.5b code 20 64 int8,int8+kernel
"""

from __future__ import annotations

import json
import sys

from decode_goals import geometric

from tokensieve.decode.workloads import prompt
from tokensieve.models import cached_load
from tokensieve.run import generate
from tokensieve.weights import weight_bytes


def run_options(label: str) -> dict:
    """generate()'s options for a precision label: "int8" or "int8+kernel"."""
    weights, kernel, rest = label.partition("+kernel")
    if rest:
        raise SystemExit(f"unknown precision label '{label}'")
    return {"weights": weights, "decode_kernel": bool(kernel)}


def agreeing(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def main(model: str, workload: str, prompts: int, new_tokens: int, precisions: list[str]) -> None:
    warm = prompt(workload, 0)  # one discarded run per precision: the first forwards of a process are slow
    for w in ("fp32", *precisions):
        generate(model, warm.context, warm.question, "full", 1.0, max_new_tokens=8, plain=warm.plain,
                 **run_options(w))
    rows = []
    for index in range(prompts):
        p = prompt(workload, index)
        common = dict(max_new_tokens=new_tokens, plain=p.plain, answer_prefix=p.answer_prefix, stop=p.stop)
        runs = {w: generate(model, p.context, p.question, "full", 1.0, **common, **run_options(w))
                for w in ("fp32", *precisions)}
        base = runs["fp32"]
        row = {"prompt": index, "fp32_tok_s": base.stats.decode_tok_s}
        for w in precisions:
            r = runs[w]
            row[w] = {"x": round(r.stats.decode_tok_s / base.stats.decode_tok_s, 3),
                      "same": r.token_ids == base.token_ids, "prefix": agreeing(r.token_ids, base.token_ids),
                      "new_tokens": len(r.token_ids)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    for w in ("fp32", *precisions):
        weights = run_options(w)["weights"]
        print(f"{model} {w}: weights hold {weight_bytes(cached_load(model, weights=weights)[0]) / 2**20:.0f} MiB")
    for w in precisions:
        mean, low, high = geometric([r[w]["x"] for r in rows])
        same = sum(r[w]["same"] for r in rows)
        prefix = sum(r[w]["prefix"] for r in rows) / len(rows)
        print(f"{model} {workload} {w}: {mean:.2f}x fp32 greedy [{low:.2f}-{high:.2f}] over {len(rows)} prompts; "
              f"identical tokens on {same}/{len(rows)}, agreeing prefix {prefix:.1f} tokens on average")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], int(args[2]), int(args[3]), (args[4] if len(args) > 4 else "bf16,int8").split(","))
