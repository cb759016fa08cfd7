"""Issue 29's lossless-decoding goals: per prompt, plain greedy and every method in the same run (one after the
other, in one process), the method's decode tokens/s over greedy's, and whether its tokens are greedy's. Prints one
JSON line per prompt and a summary per method: geometric mean of the per-prompt speed-ups with a bootstrap 95 %
interval over prompts, lossless prompts, tokens per step, nodes per step.

    .venv/bin/python scripts/decode_goals.py MODEL WORKLOAD FIRST:END NEW_TOKENS [METHODS] [OUT.jsonl]

FIRST:END are the workload's prompt indices (20:40 = prompts 20..39; a bare N is 0:N).

METHODS (comma-separated, default "recycling+packed,suffix,suffix+packed,lookup,hf:lookup"):
- `recycling`, `suffix`, `lookup`: tokensieve's drafters; `+packed` verifies through prepacked linears (products
  of `core.gemm.FROM_ROWS` = 3 rows or more), `+packedN` from N rows on;
- Token Recycling's matrix and the suffix drafter's shared trie are warm-started on the workload's calibration text
  (`bench.decode_cells`; `stdlib` calibrates on HumanEval, so it stays held out). Each suffix method's shared trie
  then keeps learning from its own outputs of the earlier prompts, as in a server (SuffixDecoding's global tree),
  never from this prompt's; the matrix is copied afresh for every prompt;
- `hf:lookup`: transformers' prompt lookup, timed against transformers' own greedy `generate` on the same prompt,
  end to end (transformers reports no prefill/decode split; these prompts' prefill is a few percent of the time);
- `greedy+packed`: greedy with every linear through prepacked oneDNN weights, one-row products included
  (`core.gemm.packed_linears(from_rows=1)`): a stronger baseline where this CPU's one-row aten product is slow.
  With it in METHODS, every method is also summarised against it.
- `~int8` after a method (`greedy~int8`, `suffix~int8`): int8 weights with the compiled product
  (`weights="int8", decode_kernel=True`). Its reference is greedy under the same weights, run for each prompt when
  any `~int8` method is listed: losslessness is checked against that greedy's tokens, and each `~int8` method is
  summarised against it as well as against fp32 greedy.
The suffix drafter measures its verification cost curve once per model before its first decode clock starts.
"""

from __future__ import annotations

import json
import math
import sys

from tokensieve.bench.decode_cells import calibrated, suffix_calibrated
from tokensieve.bench.peers.hf_decoding import hf_generate
from tokensieve.bench.stats import bootstrap_mean
from tokensieve.core.gemm import FROM_ROWS, packed_linears
from tokensieve.decode.loop import DecodeOptions, speculate
from tokensieve.decode.workloads import prompt
from tokensieve.models import cached_load
from tokensieve.run import generate

DEFAULT = "recycling+packed,suffix,suffix+packed,lookup,hf:lookup"
PACKED_GREEDY = "greedy+packed"
INT8 = "~int8"
INT8_GREEDY = "greedy" + INT8
INT8_OPTIONS = {"weights": "int8", "decode_kernel": True}  # what "~int8" runs with


def geometric(ratios: list[float]) -> tuple[float, float, float]:
    logs = [math.log(r) for r in ratios]
    low, high = bootstrap_mean(logs)
    return math.exp(sum(logs) / len(logs)), math.exp(low), math.exp(high)


def main(model: str, workload: str, prompts: range, new_tokens: int, methods: list[str], out: str | None) -> None:
    shared = {m: suffix_calibrated(model, workload) for m in methods if m.startswith("suffix")}  # one each: a
    # method's trie learns from its own earlier prompts only, never from another method's run of this prompt
    adjacency = calibrated(model, workload) if any(m.startswith("recycling") for m in methods) else None
    warm = prompt(workload, prompts[0])  # one discarded greedy run: the first forwards of a process are slow
    any_int8 = any(m.endswith(INT8) for m in methods)
    for weights in [{}, *([INT8_OPTIONS] if any_int8 else [])]:
        generate(model, warm.context, warm.question, "full", 1.0, max_new_tokens=8, plain=warm.plain,
                 answer_prefix=warm.answer_prefix, **weights)
    rows = []
    for index in prompts:
        p = prompt(workload, index)
        common = dict(max_new_tokens=new_tokens, plain=p.plain, answer_prefix=p.answer_prefix, stop=p.stop)
        greedy = generate(model, p.context, p.question, "full", 1.0, **common)
        row = {"prompt": index, "new_tokens": len(greedy.token_ids), "greedy_tok_s": greedy.stats.decode_tok_s}
        greedy8 = None
        if any_int8:
            greedy8 = generate(model, p.context, p.question, "full", 1.0, **common, **INT8_OPTIONS)
            row[INT8_GREEDY] = {"x": round(greedy8.stats.decode_tok_s / greedy.stats.decode_tok_s, 3),
                                "lossless": greedy8.token_ids == greedy.token_ids}  # int8 is its own model
        for method in methods:
            if method == INT8_GREEDY:
                continue
            if method == "hf:lookup":
                base = hf_generate(model, "hf:greedy", p, len(greedy.token_ids))
                peer = hf_generate(model, "hf:lookup", p, len(greedy.token_ids))
                row[method] = {"x": round(base.stats.wall_s / peer.stats.wall_s, 3),  # end to end: no split
                               "lossless": peer.token_ids == base.token_ids}
                continue
            if method == PACKED_GREEDY:
                with packed_linears(cached_load(model)[0], from_rows=1):
                    result = generate(model, p.context, p.question, "full", 1.0, **common)
                row[method] = {"x": round(result.stats.decode_tok_s / greedy.stats.decode_tok_s, 3),
                               "lossless": result.token_ids == greedy.token_ids}
                continue
            name, int8, _ = method.partition(INT8)
            decoder, _, packed = name.partition("+")
            options = DecodeOptions(packed_gemm=packed.startswith("packed"),
                                    packed_from_rows=int(packed.removeprefix("packed") or FROM_ROWS),
                                    adjacency=adjacency.copy() if decoder == "recycling" else None,
                                    suffix=shared.get(method))
            result = speculate(model, p.context, p.question, "full", 1.0, decode=decoder, options=options,
                               **common, **(INT8_OPTIONS if int8 else {}))
            s, reference = result.stats, greedy8 if int8 else greedy
            row[method] = {"x": round(s.decode_tok_s / greedy.stats.decode_tok_s, 3),
                           "lossless": result.token_ids == reference.token_ids,
                           "tokens_per_step": s.accepted_per_step, "nodes_per_step": s.draft_nodes}
            if int8:
                row[method]["x_int8"] = round(s.decode_tok_s / greedy8.stats.decode_tok_s, 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if out:
            with open(out, "a") as f:
                f.write(json.dumps({"model": model, "workload": workload, **row}) + "\n")
    for method in methods:
        cells = [r[method] for r in rows if r[method]["x"] > 0]
        mean, low, high = geometric([c["x"] for c in cells])
        steps = [c["tokens_per_step"] for c in cells if "tokens_per_step" in c]
        nodes = [c["nodes_per_step"] for c in cells if "nodes_per_step" in c]
        extra = (f", {sum(steps) / len(steps):.2f} tokens/step over {sum(nodes) / len(nodes):.1f} nodes"
                 if steps else "")
        print(f"{model} {workload} {method}: {mean:.2f}x [{low:.2f}-{high:.2f}] over {len(cells)} prompts, "
              f"lossless {sum(c['lossless'] for c in cells)}/{len(cells)}{extra}")
    for method in methods:
        ratios = [r[method]["x_int8"] for r in rows if "x_int8" in r[method] and r[method]["x_int8"] > 0]
        if ratios:
            mean, low, high = geometric(ratios)
            print(f"{model} {workload} {method} over {INT8_GREEDY}: {mean:.2f}x [{low:.2f}-{high:.2f}] "
                  f"over {len(ratios)} prompts")
    if PACKED_GREEDY in methods:
        for method in methods:
            pairs = [(r[method]["x"], r[PACKED_GREEDY]["x"]) for r in rows
                     if method != PACKED_GREEDY and r[method]["x"] > 0 and r[PACKED_GREEDY]["x"] > 0]
            if pairs:
                mean, low, high = geometric([x / base for x, base in pairs])
                print(f"{model} {workload} {method} over {PACKED_GREEDY}: {mean:.2f}x [{low:.2f}-{high:.2f}] "
                      f"over {len(pairs)} prompts")


if __name__ == "__main__":
    args = sys.argv[1:]
    first, _, end = args[2].rpartition(":")
    methods = (args[4] if len(args) > 4 else DEFAULT).split(",")
    main(args[0], args[1], range(int(first or 0), int(end)), int(args[3]), methods, args[5] if len(args) > 5 else None)
