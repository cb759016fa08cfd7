"""One call from (model, context, question, policy, budget) to an answer with its measured cost.

load model -> apply policy -> prefill (whole, or in chunks with eviction after each) -> greedy decode -> stats.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Unpack

import torch

from tokensieve import models
from tokensieve.core.budget import Budget
from tokensieve.core.cache import SieveCache
from tokensieve.core.gemm import packed_linears
from tokensieve.core.hooks import apply
from tokensieve.core.memory import PeakMemory, device_sync, now
from tokensieve.core.policy import Policy
from tokensieve.errors import TokensieveError
from tokensieve.models import model_lock
from tokensieve.run.prefix import Prefix, check_prefix
from tokensieve.run.prompt import Batch, feed_prompt
from tokensieve.run.result import Result, Stats
from tokensieve.run.setup import RunOptions, set_up


def generate(
    model: str = models.DEFAULT_MODEL,
    context: str | list[str] = "",
    question: str | list[str] = "",
    policy: str | Policy = "snapkv",
    budget: float | str | Budget = 0.25,
    *,
    query_aware: bool = True,
    prefix: Prefix | None = None,
    **options: Unpack[RunOptions],
) -> Result | list[Result]:
    """Answer `question` about `context` with `policy` at `budget`, and measure what it cost.

    A list of contexts (with one question, or one per context) runs as one left-padded batch and returns one
    Result per sequence; each sequence gets the budget of its own prompt length.
    query_aware: the question is inside the scored prompt (compression sees it); otherwise the context is
    compressed first and the question is appended afterwards without further eviction.
    prefix: a `prefill()` of this very prompt: decode from a copy of its cache, feeding only the rest of the
    prompt (a single query-aware sequence without chunks, under a policy `branchable` from it).
    options: `RunOptions` (chunk, max_new_tokens, answer_prefix, sinks, window, evict_every, device, weights,
    stop_at_newline, stop, plain, kv_dtype, decode_kernel, packed_gemm), each described in
    `tokensieve.run.setup.set_up`.
    """
    contexts = [context] if isinstance(context, str) else list(context)
    questions = [question] * len(contexts) if isinstance(question, str) else list(question)
    run = set_up(model, contexts, questions, policy, budget, **options)
    net, policy_obj, budget = run.net, run.policy, run.budget
    chunk, max_new_tokens = run.chunk, run.max_new_tokens
    ctx_rows, q_rows = run.contexts, run.questions
    if not query_aware and len({len(q) for q in q_rows}) > 1:
        raise TokensieveError("a query-agnostic batch needs questions of equal token length (padding goes left)")
    batch = Batch.left_padded([c + q for c, q in zip(ctx_rows, q_rows, strict=True)], run.pad_id, net.device)
    width, question_len = batch.ids.shape[1], len(q_rows[0])
    prompt_lens = batch.lengths
    budget_base = prompt_lens if query_aware else [n - question_len for n in prompt_lens]

    evicts = policy_obj.evicts()
    start_at = 0
    if prefix is not None:
        if run.kv_dtype != "fp":
            raise TokensieveError(f"a prefix is prefilled at full precision; kv_dtype {run.kv_dtype} prefills its own")
        check_prefix(prefix, model, batch, policy_obj, query_aware, chunk, max_new_tokens)
        cache_, start_at = prefix.cache.branch(), len(prefix.ids)
    else:
        cache_ = SieveCache(net.config, reserve=0 if evicts else width + max_new_tokens, kv_dtype=run.kv_dtype)
    generated: list[list[int]] = [[] for _ in contexts]
    done = [False] * len(contexts)
    steps = 0
    with model_lock(net), torch.inference_mode(), PeakMemory(net.device) as peak, \
            apply(net, policy_obj, budget_base, decode_kernel=run.decode_kernel) as session, \
            packed_linears(net) if run.packed_gemm else nullcontext():
        session.decode_room = max_new_tokens
        start = now()
        if query_aware:
            logits = feed_prompt(net, batch, cache_, start_at, width, chunk)
        else:
            feed_prompt(net, batch, cache_, 0, width - question_len, chunk)
            session.compress = False
            logits = feed_prompt(net, batch, cache_, width - question_len, width, chunk)
            session.compress = True
        cache_.compact()  # a quantized store codes the prompt's cold rows now (nothing at full precision)
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
                done[b] = run.ended(generated[b], token)
            if all(done):
                break
            batch.extend(tokens.unsqueeze(-1))
            logits = batch.forward(net, cache_, batch.ids.shape[1] - 1, batch.ids.shape[1])
            steps += 1
        device_sync(net.device)
        decode_s = now() - start
        kv_end, state = cache_.kv_bytes(), session.state_bytes()
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
            kv_dtype=run.kv_dtype, policy_state_bytes=state,
        )
        results.append(Result(answer=run.answer(tokens), token_ids=tokens, stats=stats))
    return results[0] if isinstance(context, str) else results


def stored_token_counts(cache_: SieveCache, b: int) -> list[int]:
    """Tokens sequence b really stores per layer (its padding slots not counted)."""
    out = []
    for layer, stored in zip(cache_.layers, cache_.stored_tokens(), strict=True):
        pads = getattr(layer, "pad_slots", None)
        out.append(stored - pads[b] if pads else stored)
    return out
