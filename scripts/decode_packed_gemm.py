"""Greedy vs Token Recycling vs Token Recycling with prepacked linears (`DecodeOptions(packed_gemm=True)`) on the
first N HumanEval prompts, each method's decode tokens/s in the same run per prompt, and whether its tokens are
greedy's. The numbers in docs/DECODE.md come from:

    .venv/bin/python scripts/decode_packed_gemm.py qwen2.5-coder-0.5b 20 64
    .venv/bin/python scripts/decode_packed_gemm.py smollm2-135m 20 64
"""

from __future__ import annotations

import math
import random
import statistics
import sys

from tokensieve.bench.decode_cells import calibrated
from tokensieve.decode.loop import DecodeOptions, speculate
from tokensieve.decode.workloads import prompt
from tokensieve.run import generate


def geometric_mean_interval(ratios: list[float], draws: int = 5000) -> tuple[float, float, float]:
    """Geometric mean of the ratios and its bootstrap 95 % interval over prompts."""
    def geo(values):
        return math.exp(statistics.mean(math.log(v) for v in values))

    rng = random.Random(0)
    boots = sorted(geo([rng.choice(ratios) for _ in ratios]) for _ in range(draws))
    return geo(ratios), boots[int(0.025 * draws)], boots[int(0.975 * draws) - 1]


def main(model: str, prompts: int, new_tokens: int) -> None:
    adjacency = calibrated(model, "code")
    rows = []
    for index in range(prompts):
        p = prompt("code", index)
        common = dict(max_new_tokens=new_tokens, plain=p.plain, answer_prefix=p.answer_prefix, stop=p.stop)
        greedy = generate(model, p.context, p.question, "full", 1.0, **common)
        runs = {name: speculate(model, p.context, p.question, "full", 1.0, decode="recycling",
                                options=DecodeOptions(adjacency=adjacency, packed_gemm=packed), **common)
                for name, packed in (("recycling", False), ("recycling+packed", True))}
        rows.append({"prompt": index, "greedy_tok_s": greedy.stats.decode_tok_s,
                     **{f"{n}_x": round(r.stats.decode_tok_s / greedy.stats.decode_tok_s, 3) for n, r in runs.items()},
                     **{f"{n}_lossless": r.token_ids == greedy.token_ids for n, r in runs.items()}})
        print(rows[-1], flush=True)
    for name in ("recycling", "recycling+packed"):
        mean, low, high = geometric_mean_interval([r[f"{name}_x"] for r in rows])
        lossless = sum(r[f"{name}_lossless"] for r in rows)
        print(f"{name}: {mean:.2f}x greedy [{low:.2f}-{high:.2f}], lossless on {lossless} of {len(rows)} prompts")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
