"""Tasks on real text from installed packages: needle (grid of lengths x depths x needles), fidelity (teacher-
forced continuation after compression) and streaming (perplexity over a stream longer than the trained context).

A case is a plain dict (JSON-able, hashed into the cell key). `run_local` runs one cell with a tokensieve
policy in this process and returns (quality, metrics).
"""

from __future__ import annotations

import statistics
from functools import cache

import torch

from tokensieve.bench import metrics
from tokensieve.bench.cost import Shape, attention_flops, median_timed
from tokensieve.bench.storage import split_storage, split_weights
from tokensieve.core.budget import Budget
from tokensieve.core.cache import SieveCache
from tokensieve.core.hooks import apply
from tokensieve.core.memory import PeakMemory, now, rss_mb
from tokensieve.data.corpus import essays
from tokensieve.data.needle import NEEDLES, needle_case
from tokensieve.errors import TokensieveError
from tokensieve.methods import make
from tokensieve.models import cached_load
from tokensieve.run import completion_prompt
from tokensieve.run import generate as ts_generate

TASKS = ("needle", "fidelity", "streaming", "ruler", "code")
PROMPT_TASKS = ("ruler", "code")  # run by bench/prompts.py (prefill once per case, branch per method)
STREAM_OPTIONS = ("positions", "evict_every")  # KV-policy options a streaming case may set
NEEDLE_NEW_TOKENS = 12
# Per-generation counters stored in every row (null where the source lacks them, e.g. peers or older code):
# attended_tokens {"mean", "max"} per decode step and layer, dense_fallbacks (forwards attended densely under a
# policy that should not have), kv_bytes_end (KV bytes really allocated after decoding).
COUNTERS = ("attended_tokens", "dense_fallbacks", "kv_bytes_end")


def counters(source) -> dict:
    """The COUNTERS of a generation's Stats, or those a hooks Session counted (its `usage`; the caller measures
    kv_bytes_end from its cache); None where the source lacks one."""
    usage = getattr(source, "usage", None)
    if usage is not None:
        return {"attended_tokens": usage.attended_summary(), "dense_fallbacks": usage.dense_fallbacks,
                "kv_bytes_end": None}
    return {name: getattr(source, name, None) for name in COUNTERS}


def case_id(case: dict) -> str:
    if case["task"] in PROMPT_TASKS:
        from tokensieve.bench.prompts import case_id as prompt_case_id

        return prompt_case_id(case)
    if case["task"] == "needle":
        return f"needle/{case['tokens']}/d{case['depth']:.2f}/n{case['needle']}"
    if case["task"] == "fidelity":
        return f"fidelity/{case['tokens']}+{case['continuation']}/o{case['offset']}"
    extra = "".join(f"/{key}={case[key]}" for key in STREAM_OPTIONS if key in case)
    return f"streaming/{case['tokens']}/c{case['chunk']}/w{case['window']}{extra}"


def needle_cases(lengths, depths, needles) -> list[dict]:
    for n in needles:
        if not 0 <= n < len(NEEDLES):
            raise TokensieveError(f"needle {n} does not exist: there are {len(NEEDLES)} (0..{len(NEEDLES) - 1})")
    return [{"task": "needle", "tokens": t, "depth": d, "needle": n} for t in lengths for d in depths for n in needles]


@cache
def needle_prompt(model: str, tokens: int, depth: float, needle: int):
    """The case and its exact prompt token ids (context, question), shared by every method and peer."""
    _, tok = cached_load(model)
    case = needle_case(tok, tokens, depth, needle)
    ctx_text, q_text = completion_prompt(case.context, case.question, case.answer_prefix)
    ctx = tok(ctx_text).input_ids
    question = tok(q_text, add_special_tokens=False).input_ids
    return case, list(ctx), list(question)


@cache
def newline_ids(model: str) -> tuple[int, ...]:
    _, tok = cached_load(model)
    return tuple(i for i in range(len(tok)) if "\n" in tok.decode([i]))


@cache
def essay_ids(model: str, tokens: int, offset: int = 0) -> tuple[int, ...]:
    """`tokens` consecutive token ids of the essays starting at essay `offset` (wrapping around)."""
    _, tok = cached_load(model)
    texts, ids, i = essays(), [], offset
    while len(ids) < tokens:
        ids += tok(" " + texts[i % len(texts)], add_special_tokens=False).input_ids
        i += 1
    return tuple(ids[:tokens])


def _budget(value: float) -> Budget:
    return Budget(float(value))


def run_needle(model: str, case: dict, method: str, budget: float, repeats: int,
               kv_dtype: str = "fp", weights: str = "fp32") -> tuple[float, dict]:
    needle, _, question = needle_prompt(model, case["tokens"], case["depth"], case["needle"])

    def once() -> dict:
        r = ts_generate(model, needle.context, needle.question, method, _budget(budget),
                        answer_prefix=needle.answer_prefix, max_new_tokens=NEEDLE_NEW_TOKENS, stop_at_newline=True,
                        kv_dtype=kv_dtype, weights=weights)
        return {"answer": r.answer, **{k: getattr(r.stats, k) for k in (
            "prompt_tokens", "new_tokens", "prefill_s", "decode_tok_s", "peak_rss_mb", "kv_bytes_full",
            "kv_bytes_kept", "kept_tokens")}, **counters(r.stats)}

    first, timing = median_timed(once, repeats, warmup=0)
    out = {**first, **timing, "expected": needle.expected}
    net, _ = cached_load(model, weights=weights)  # the model the cell ran (its shape only)
    out["attention_flops"] = attention_flops(Shape.of(net.config), out["prompt_tokens"], out["kept_tokens"],
                                             out["new_tokens"])
    return metrics.contains(out["answer"], needle.expected), out


def fidelity_ids(model: str, case: dict) -> tuple[torch.Tensor, torch.Tensor]:
    ids = essay_ids(model, case["tokens"] + case["continuation"], case["offset"])
    return torch.tensor([ids[: case["tokens"]]]), torch.tensor([ids[case["tokens"]:]])


def continuation_logits(model: str, case: dict, method: str, budget: float) -> tuple[torch.Tensor, dict]:
    """Compress the context with `method`, then teacher-force the continuation without further eviction. A dynamic
    selector sees the continuation as decode steps, so its selection is what gets scored (fed as one block, it
    would attend densely like any multi-token forward)."""
    net, _ = cached_load(model)
    ctx, cont = fidelity_ids(model, case)
    cache_ = SieveCache(net.config)
    policy = make(method, budget=_budget(budget))
    with torch.inference_mode(), PeakMemory(net.device) as peak, apply(net, policy, ctx.shape[1]) as session:
        start = now()
        last = net(input_ids=ctx, cache=cache_, use_cache=True, logits_to_keep=1).logits
        prefill_s = now() - start
        stats = {"kv_bytes_kept": cache_.kv_bytes(), "kv_bytes_full": cache_.full_kv_bytes(),
                 "kept_tokens": cache_.stored_tokens()}
        session.compress = False
        if policy.attender() is not None or policy.skipper() is not None:  # selectors choose per decode query,
            # and a skipper would skip inside a forward of several tokens: one token at a time
            rest = torch.cat([net(input_ids=cont[:, i : i + 1], cache=cache_, use_cache=True).logits
                              for i in range(cont.shape[1] - 1)], 1)
        else:  # evicted caches are attended densely: one forward gives the same logits
            rest = net(input_ids=cont[:, :-1], cache=cache_, use_cache=True).logits
    logits = torch.cat([last, rest], 1)[0]
    stats |= {**counters(session), "kv_bytes_end": cache_.kv_bytes()}
    return logits, {**stats, "prefill_s": prefill_s, "peak_rss_mb": round(peak.rss_mb, 1)}


_REFERENCE: dict[str, torch.Tensor] = {}


def run_fidelity(model: str, case: dict, method: str, budget: float, repeats: int) -> tuple[float, dict]:
    key = f"{model}/{case_id(case)}"
    if key not in _REFERENCE:
        _REFERENCE.clear()
        _REFERENCE[key] = continuation_logits(model, case, "full", 1.0)[0]
    runs = [continuation_logits(model, case, method, budget) for _ in range(max(repeats, 1))]
    logits, stats = runs[0]
    stats["prefill_s_all"] = [r[1]["prefill_s"] for r in runs]
    stats["prefill_s"] = statistics.median(stats["prefill_s_all"])
    _, cont = fidelity_ids(model, case)
    scores = metrics.fidelity(_REFERENCE[key], logits, cont[0])
    net, _ = cached_load(model)
    stats["attention_flops"] = attention_flops(Shape.of(net.config), case["tokens"], stats["kept_tokens"],
                                               case["continuation"])
    return scores["top1"], {**scores, **stats}


def run_streaming(model: str, case: dict, method: str, budget: float, repeats: int) -> tuple[float | None, dict]:
    """Perplexity of a stream fed `chunk` tokens at a time; the policy evicts after every chunk down to
    budget x `window` tokens, so the cache stays bounded. With `chunk` 1 every token is a decode step, and the
    case's `evict_every` bounds the cache instead. Keys keep their true RoPE positions unless the case sets
    `positions: rolling` (re-rotated into the cache; the row records which)."""
    net, _ = cached_load(model)
    ids = torch.tensor([essay_ids(model, case["tokens"], case.get("offset", 0))])
    chunk, every = case["chunk"], max(1, case["tokens"] // case["chunk"] // 16)
    cache_ = SieveCache(net.config)
    nll, count, trace, pending = 0.0, 0, [], None
    start = now()
    options = {key: case[key] for key in STREAM_OPTIONS if key in case and method != "full"}
    policy = make(method, budget=_budget(budget), **options)
    with torch.inference_mode(), PeakMemory(net.device) as peak, apply(net, policy, case["window"]) as session:
        for i, lo in enumerate(range(0, ids.shape[1], chunk)):
            piece = ids[:, lo : lo + chunk]
            logits = net(input_ids=piece, cache=cache_, use_cache=True).logits[0].float()
            logp = torch.log_softmax(logits, -1)
            if pending is not None:
                nll -= float(pending[piece[0, 0]])
                count += 1
            nll -= float(logp[:-1].gather(1, piece[0, 1:, None]).sum())
            count += piece.shape[1] - 1
            pending = logp[-1]
            if i % every == 0 or lo + chunk >= ids.shape[1]:
                trace.append({"tokens": lo + piece.shape[1], "rss_mb": round(rss_mb(), 1),
                              "kv_bytes": cache_.kv_bytes()})
    elapsed = now() - start
    limit = getattr(net.config.get_text_config(), "max_position_embeddings", None)
    ppl = float(torch.tensor(nll / count).exp())
    return None, {"ppl": ppl, "tokens": count + 1, "seconds": elapsed, "tok_s": ids.shape[1] / elapsed,
                  "peak_rss_mb": round(peak.rss_mb, 1), "kv_bytes_kept": cache_.kv_bytes(),
                  "kept_tokens": cache_.stored_tokens(), "memory": trace, "trained_context": limit,
                  "beyond_trained": bool(limit and ids.shape[1] > limit),
                  "positions": policy.evictor().positions if policy.evictor() is not None else "true",
                  "evict_every": policy.decode_evict_every(),
                  **counters(session), "kv_bytes_end": cache_.kv_bytes()}


RUNNERS = {"needle": run_needle, "fidelity": run_fidelity, "streaming": run_streaming}


def run_local(model: str, case: dict, method: str, budget: float, repeats: int = 1) -> tuple[float | None, dict]:
    """One cell of a decoder task; a method "policy@int4" stores its cache as codes, "policy~int8" runs on int8
    weights (`bench.storage`)."""
    name, kv_dtype = split_storage(method)
    weights = split_weights(method)[1]
    if case["task"] in PROMPT_TASKS:
        from tokensieve.bench.prompts import run_prompt

        return run_prompt(model, case, name, budget, repeats, kv_dtype=kv_dtype, weights=weights)
    if (kv_dtype, weights) != ("fp", "fp32") and case["task"] != "needle":
        raise TokensieveError(f"the {case['task']} task runs at full precision only, not {method}")
    if (kv_dtype, weights) != ("fp", "fp32"):
        return run_needle(model, case, name, budget, repeats, kv_dtype=kv_dtype, weights=weights)
    return RUNNERS[case["task"]](model, case, name, budget, repeats)
