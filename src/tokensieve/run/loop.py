"""One call from (model, context, question, policy, budget) to an answer with its measured cost.

load model -> apply policy -> prefill (whole, or in chunks with eviction after each) -> greedy decode -> stats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from tokensieve import models
from tokensieve.core.budget import Budget, parse_budget
from tokensieve.core.cache import SieveCache
from tokensieve.core.hooks import apply
from tokensieve.core.memory import PeakMemory, device_sync, now
from tokensieve.core.policy import KVPolicy, Policy
from tokensieve.errors import TokensieveError
from tokensieve.methods import make
from tokensieve.models import cached_load, model_lock
from tokensieve.run.prefix import Prefix, check_prefix
from tokensieve.run.prompt import Batch, completion_prompt, feed_prompt, validate_lengths
from tokensieve.run.result import Result, Stats


def resolve_policy(policy: str | Policy, budget: Budget, evict_every: int | None) -> Policy:
    policy_obj = policy if isinstance(policy, Policy) else make(policy, budget=budget)
    if evict_every is None:
        return policy_obj
    if not isinstance(policy_obj, KVPolicy):
        raise TokensieveError(f"--evict-every applies to KV policies; '{policy_obj.name}' evicts nothing")
    if evict_every < 0:
        raise TokensieveError(f"evict_every must be >= 0 (0 = off), got {evict_every}")
    return replace(policy_obj, evict_every=evict_every)


def generate(
    model: str = models.DEFAULT_MODEL,
    context: str | list[str] = "",
    question: str | list[str] = "",
    policy: str | Policy = "snapkv",
    budget: float | str | Budget = 0.25,
    *,
    chunk: int | None = None,
    max_new_tokens: int = 32,
    query_aware: bool = True,
    answer_prefix: str = "",
    sinks: int = 4,
    window: int = 32,
    evict_every: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    stop_at_newline: bool = False,
    stop: Callable[[str], bool] | None = None,
    plain: bool = False,
    prefix: Prefix | None = None,
) -> Result | list[Result]:
    """Answer `question` about `context` with `policy` at `budget`, and measure what it cost.

    A list of contexts (with one question, or one per context) runs as one left-padded batch and returns one
    Result per sequence; each sequence gets the budget of its own prompt length.
    query_aware: the question is inside the scored prompt (compression sees it); otherwise the context is
    compressed first and the question is appended afterwards without further eviction.
    chunk: feed the prompt `chunk` tokens at a time, evicting after each, so peak memory ~ budget + chunk.
    evict_every: for KV policies, evict during decode whenever a layer holds capacity + N (None = the policy's
    default: off, except streaming_llm).
    stop: called with a sequence's answer so far after each token; True ends that sequence (e.g. code complete).
    plain: the prompt is context + question verbatim, no "Question:/Answer:" frame (code completion).
    prefix: a `prefill()` of this very prompt: decode from a copy of its cache, feeding only the rest of the
    prompt (a single query-aware sequence without chunks, under a policy `branchable` from it).
    """
    if chunk is not None and chunk < 1:
        raise TokensieveError(f"chunk must be a positive token count, got {chunk}")
    if max_new_tokens < 1:
        raise TokensieveError("max_new_tokens must be at least 1")
    contexts = [context] if isinstance(context, str) else list(context)
    questions = [question] * len(contexts) if isinstance(question, str) else list(question)
    if not contexts or len(questions) != len(contexts):
        raise TokensieveError(f"{len(contexts)} contexts but {len(questions)} questions: give one or one each")
    if not isinstance(budget, Budget):
        budget = parse_budget(budget, sinks=sinks, window=window)
    policy_obj = resolve_policy(policy, budget, evict_every)
    net, tokenizer = cached_load(model, device, dtype)
    limit = getattr(net.config.get_text_config(), "max_position_embeddings", None)
    ctx_rows, q_rows = [], []
    for ctx, qst in zip(contexts, questions, strict=True):
        context_text, question_text = completion_prompt(ctx, qst, answer_prefix, plain)
        ctx_ids = tokenizer(context_text).input_ids if ctx.strip() else []
        q_ids = tokenizer(question_text, add_special_tokens=False).input_ids
        validate_lengths(len(ctx_ids) + len(q_ids), len(ctx_ids), max_new_tokens, limit)
        ctx_rows.append(ctx_ids)
        q_rows.append(q_ids)
    if not query_aware and len({len(q) for q in q_rows}) > 1:
        raise TokensieveError("a query-agnostic batch needs questions of equal token length (padding goes left)")
    eos = set(as_id_list(net.generation_config.eos_token_id) + as_id_list(tokenizer.eos_token_id))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos or {0})
    batch = Batch.left_padded([c + q for c, q in zip(ctx_rows, q_rows, strict=True)], pad_id, net.device)
    width, question_len = batch.ids.shape[1], len(q_rows[0])
    prompt_lens = batch.lengths
    budget_base = prompt_lens if query_aware else [n - question_len for n in prompt_lens]

    evicts = isinstance(policy_obj, KVPolicy) and not policy_obj.budget.is_full
    start_at = 0
    if prefix is not None:
        check_prefix(prefix, model, batch, policy_obj, query_aware, chunk, max_new_tokens)
        cache_, start_at = prefix.cache.branch(), len(prefix.ids)
    else:
        cache_ = SieveCache(net.config, reserve=0 if evicts else width + max_new_tokens)
    generated: list[list[int]] = [[] for _ in contexts]
    done = [False] * len(contexts)
    steps = 0
    with model_lock(net), torch.inference_mode(), PeakMemory(net.device) as peak, \
            apply(net, policy_obj, budget_base) as session:
        session.decode_room = max_new_tokens
        start = now()
        if query_aware:
            logits = feed_prompt(net, batch, cache_, start_at, width, chunk)
        else:
            feed_prompt(net, batch, cache_, 0, width - question_len, chunk)
            session.compress = False
            logits = feed_prompt(net, batch, cache_, width - question_len, width, chunk)
            session.compress = True
        device_sync(net.device)
        prefill_s = now() - start
        kv_full, kv_kept = cache_.full_kv_bytes(), cache_.kv_bytes()
        kept = [stored_token_counts(cache_, b) for b in range(len(contexts))]
        start = now()
        while True:
            tokens = logits.argmax(-1)
            for b, token in enumerate(tokens.tolist()):
                if done[b]:
                    continue
                generated[b].append(token)
                newline = stop_at_newline and "\n" in tokenizer.decode([token])
                stopped = stop is not None and stop(tokenizer.decode(generated[b], skip_special_tokens=True))
                done[b] = token in eos or newline or stopped or len(generated[b]) == max_new_tokens
            if all(done):
                break
            batch.extend(tokens.unsqueeze(-1))
            logits = batch.forward(net, cache_, batch.ids.shape[1] - 1, batch.ids.shape[1])
            steps += 1
        device_sync(net.device)
        decode_s = now() - start
        kv_end = cache_.kv_bytes()
        kept_end = [stored_token_counts(cache_, b) for b in range(len(contexts))]
    usage = session.usage
    results = []
    for b, tokens in enumerate(generated):
        stats = Stats(
            policy=policy_obj.name, budget=budget.value, prompt_tokens=prompt_lens[b], new_tokens=len(tokens),
            prefill_s=round(prefill_s + (prefix.seconds if prefix else 0.0), 4),
            shared_prefill_s=round(prefix.seconds, 4) if prefix else 0.0,
            decode_tok_s=round(steps / decode_s, 3) if steps and decode_s else 0.0,
            peak_rss_mb=round(peak.rss_mb, 1), kv_bytes_full=kv_full, kv_bytes_kept=kv_kept, kv_bytes_end=kv_end,
            kept_tokens=kept[b], kept_tokens_end=kept_end[b], attended_tokens=usage.attended_summary(),
            dense_fallbacks=usage.dense_fallbacks, dense_fallbacks_decode=usage.dense_decode,
            evictions=session.evictions, chunk=chunk, evict_every=policy_obj.decode_evict_every(),
            batch=len(contexts), query_aware=query_aware, device=str(net.device), peak_device_mb=peak.device_mb,
        )
        answer = tokenizer.decode([t for t in tokens if t not in eos], skip_special_tokens=True)
        results.append(Result(answer=answer if plain else answer.strip(), token_ids=tokens, stats=stats))
    return results[0] if isinstance(context, str) else results


def stored_token_counts(cache_: SieveCache, b: int) -> list[int]:
    """Tokens sequence b really stores per layer (its padding slots not counted)."""
    out = []
    for layer, stored in zip(cache_.layers, cache_.stored_tokens(), strict=True):
        pads = getattr(layer, "pad_slots", None)
        out.append(stored - pads[b] if pads else stored)
    return out


def as_id_list(value) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [int(value)]
