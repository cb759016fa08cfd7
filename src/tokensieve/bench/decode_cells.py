"""Decode cases in the bench grid (`tokensieve bench --suite decode`): ids, methods, and running one cell.

A case is {"task": "decode", "workload": "code" | "prose" | "json", "index": i, "new_tokens": n}. A method is a
decoder, optionally on top of a policy at the cell's budget ("recycling+snapkv"):
- `greedy` (the reference), `recycling` (adjacency warm-started on the workload's calibration text), `suffix`
  (SuffixDecoding's tries, the shared one holding the same calibration text; `suffix:cold` starts empty),
  `recycling:cold` (an empty matrix, seeded from the prompt only), `recycling:NxD` (a tree of N draft nodes over
  D levels), `lookup` / `lookup:N` (N draft tokens), `layerskip` / `layerskip:K` (the first K layers draft);
- peers through transformers' own `generate`: `hf:lookup` (prompt_lookup_num_tokens) and `hf:assisted`
  (assistant_model: qwen2.5-coder-0.5b drafting for qwen2.5-coder-1.5b).
Every cell also decodes plain greedy in the same process, interleaved with the method over the repeats, so the
speed-up is a ratio of medians measured side by side, and checks the tokens are greedy's (lossless)."""

from __future__ import annotations

import re
import statistics
from functools import cache

from tokensieve.bench.peers.hf_decoding import hf_generate
from tokensieve.errors import TokensieveError

TASK = "decode"
REFERENCE = "greedy"
DECODERS = ("greedy", "recycling", "lookup", "layerskip", "suffix")
PEERS = ("hf:lookup", "hf:assisted")


def is_decode_case(case: dict) -> bool:
    return case.get("task") == TASK


def case_id(case: dict) -> str:
    return f"decode/{case['workload']}/{case['index']}"


def cases(workload: str, indices, new_tokens: int = 128) -> list[dict]:
    return [{"task": TASK, "workload": workload, "index": i, "new_tokens": new_tokens} for i in indices]


def split(method: str) -> tuple[str, str | None]:
    decoder, _, policy = method.partition("+")
    options(decoder)
    return decoder, policy or None


def options(decoder: str):
    """`recycling:cold:12x5` -> ("recycling", DecodeOptions, cold) with the variant's tree, chain or exit layer."""
    from tokensieve.decode.drafters import CPU_TREE
    from tokensieve.decode.loop import DecodeOptions
    from tokensieve.decode.tree import DraftTree

    if decoder in PEERS:
        return decoder, DecodeOptions(), False
    base, *variants = decoder.split(":")
    if base not in DECODERS:
        raise TokensieveError(f"unknown decoder '{decoder}': choose from {', '.join(DECODERS + PEERS)} "
                              "(variants: recycling:cold, recycling:NxD, lookup:N, layerskip:K, suffix:cold)")
    out, cold = DecodeOptions(), False
    for v in variants:
        if base in ("recycling", "suffix") and v == "cold":
            cold = True
        elif base == "recycling" and re.fullmatch(r"\d+x\d+", v):
            nodes, depth = map(int, v.split("x"))
            out.tree = DraftTree.by_prior(**{**CPU_TREE, "nodes": nodes, "depth": depth})
        elif base in ("lookup", "layerskip") and v.isdigit() and int(v) > 0:
            if base == "lookup":
                out.length = int(v)
            else:
                out.exit_layer = int(v)
        else:
            raise TokensieveError(f"decoder '{decoder}': unknown variant '{v}'")
    return base, out, cold


def decode_methods() -> set[str]:
    return set(DECODERS + PEERS)


def is_decode_method(method: str) -> bool:
    try:
        split(method)
    except TokensieveError:
        return False
    return True


@cache
def calibrated(model: str, workload: str, k: int = 8, texts: int = 40):
    """The adjacency matrix after teacher-forcing the workload's calibration text (once per process)."""
    from tokensieve.decode.adjacency import Adjacency
    from tokensieve.models import cached_load

    net = cached_load(model)[0]
    adjacency = Adjacency(net.get_output_embeddings().weight.shape[0], k, net.device)
    adjacency.calibrate(net, list(calibration_ids(model, workload, texts)))
    return adjacency


def suffix_calibrated(model: str, workload: str, texts: int = 40):
    """A shared suffix trie holding the workload's calibration text (built afresh for every cell: it learns)."""
    from tokensieve.decode.suffix import SuffixCache

    shared = SuffixCache()
    shared.warm(list(calibration_ids(model, workload, texts)))
    return shared


@cache
def calibration_ids(model: str, workload: str, texts: int) -> tuple[list[int], ...]:
    """The workload's calibration texts as token ids (once per process): what warm-starts every drafter's table."""
    from tokensieve.decode.workloads import calibration
    from tokensieve.models import cached_load

    tokenizer = cached_load(model)[1]
    return tuple(tokenizer(t).input_ids for t in calibration(workload, texts))


def run(model: str, case: dict, method: str, budget: float, repeats: int = 1) -> tuple[float | None, dict]:
    """(quality, metrics): quality 1.0 when the tokens are plain greedy's (lossless), else 0.0; metrics the
    medians of decode and end-to-end tokens/s for the method and for greedy, their ratios, tokens per step,
    the measured cost of verifying the tree and the ceiling it sets."""
    from tokensieve.decode.workloads import prompt
    from tokensieve.run import generate

    decoder, policy = split(method)
    policy, budget = (policy, budget) if policy else ("full", 1.0)
    p = prompt(case["workload"], case["index"])
    common = dict(max_new_tokens=case["new_tokens"], plain=p.plain, answer_prefix=p.answer_prefix, stop=p.stop)
    runs: dict[str, list] = {"greedy": [], "method": [], "hf_greedy": []}
    for _ in range(max(repeats, 3)):
        runs["greedy"].append(generate(model, p.context, p.question, policy, budget, **common))
        if decoder in PEERS:  # the peers' own baseline: transformers' greedy generate, same tokens

            runs["hf_greedy"].append(hf_generate(model, "hf:greedy", p, len(runs["greedy"][0].token_ids)))
        if decoder != REFERENCE:
            runs["method"].append(_method(model, decoder, case["workload"], p, policy, budget, common,
                                          runs["greedy"][0]))
    greedy = runs["greedy"][0]
    metrics = {"new_tokens": len(greedy.token_ids), "policy": policy}
    for name, results in runs.items():
        metrics |= _speeds(name, results)
    if decoder == REFERENCE:
        return 1.0, metrics
    first = runs["method"][0]
    base = "hf_greedy" if decoder in PEERS else "greedy"
    for kind in ("decode", "e2e"):
        a, b = metrics.get(f"method_{kind}_tok_s"), metrics.get(f"{base}_{kind}_tok_s")
        metrics[f"speedup_{kind}"] = round(a / b, 3) if a and b else None
    lossless = first.token_ids == greedy.token_ids
    metrics["lossless"] = lossless
    stats = getattr(first, "stats", None)
    if stats is not None and hasattr(stats, "accepted_per_step"):
        metrics |= {"accepted_per_step": stats.accepted_per_step, "accepted_hist": stats.accepted_hist,
                    "draft_nodes": stats.draft_nodes, "steps": stats.steps, "extra_bytes": stats.adjacency_bytes,
                    "peak_rss_mb": stats.peak_rss_mb, "draft_s": stats.draft_s}
        cost = _verify_cost(model, p, round(stats.draft_nodes))
        metrics["verify_cost"] = round(cost, 3)
        metrics["ceiling"] = round(stats.accepted_per_step / cost, 3)
    return (1.0 if lossless else 0.0), metrics


def _speeds(name: str, results) -> dict:
    """Medians over the repeats: decode tokens/s (after the first token; tokensieve's decoders) and end-to-end
    tokens/s (prefill included; every decoder and peer)."""
    if not results:
        return {}
    out = {f"{name}_e2e_tok_s": round(statistics.median(len(r.token_ids) / _wall(r.stats) for r in results), 3)}
    if all(getattr(r.stats, "decode_tok_s", 0) for r in results):
        out[f"{name}_decode_tok_s"] = round(statistics.median(r.stats.decode_tok_s for r in results), 3)
    return out


def _wall(stats) -> float:
    if hasattr(stats, "wall_s"):
        return stats.wall_s
    return stats.prefill_s + (stats.new_tokens - 1) / stats.decode_tok_s if stats.decode_tok_s else stats.prefill_s


def _method(model, decoder, workload, p, policy, budget, common, greedy):
    from tokensieve.decode.loop import speculate

    if decoder in PEERS:
        if policy != "full":
            raise TokensieveError(f"{decoder} runs transformers' own generate: no tokensieve policy on top")

        return hf_generate(model, decoder, p, len(greedy.token_ids))
    base, chosen, cold = options(decoder)
    if base == "recycling" and not cold:
        chosen.adjacency = calibrated(model, workload).copy()
    if base == "suffix" and not cold:
        chosen.suffix = suffix_calibrated(model, workload)
    return speculate(model, p.context, p.question, policy, budget, decode=base, options=chosen, **common)


def _verify_cost(model: str, p, nodes: int) -> float:
    """cost(nodes) / cost(1) on this prompt's full cache, medians of interleaved repeats."""
    import torch

    from tokensieve.core.cache import SieveCache
    from tokensieve.core.hooks import apply
    from tokensieve.decode.cost import verification_cost
    from tokensieve.decode.verify import Verifier
    from tokensieve.methods import make
    from tokensieve.models import cached_load
    from tokensieve.run import Batch, completion_prompt, feed_prompt

    net, tokenizer = cached_load(model)
    context, question = completion_prompt(p.context, p.question, p.answer_prefix, p.plain)
    ids = tokenizer(context).input_ids + tokenizer(question, add_special_tokens=False).input_ids
    cache_ = SieveCache(net.config, reserve=len(ids) + nodes + 8)
    with torch.inference_mode(), apply(net, make("full")) as session:
        feed_prompt(net, Batch.left_padded([ids], 0, net.device), cache_, 0, len(ids), None)
        times = verification_cost(Verifier(net, cache_, session), sorted({1, max(nodes, 1)}), repeats=5)
    return times[max(nodes, 1)] / times[1]
