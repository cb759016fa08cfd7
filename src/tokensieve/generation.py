"""One call from (model, context, question, policy, budget) to an answer with its measured cost.

load model -> apply policy -> prefill (whole, or in chunks with eviction after each) -> greedy decode -> stats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cache

import torch

from tokensieve import models
from tokensieve.core.budget import Budget, parse_budget
from tokensieve.core.cache import SieveCache, SieveLayer
from tokensieve.core.hooks import apply
from tokensieve.core.memory import PeakMemory, now
from tokensieve.core.policy import Policy, make
from tokensieve.errors import TokensieveError


@dataclass
class Stats:
    """The JSON contract of `tokensieve generate --json` (`stats`)."""

    policy: str
    budget: float
    prompt_tokens: int
    new_tokens: int
    prefill_s: float
    decode_tok_s: float
    peak_rss_mb: float
    kv_bytes_full: int  # what an unmodified cache holds after the prompt
    kv_bytes_kept: int  # what this policy's cache holds after the prompt
    kept_tokens: list[int] = field(default_factory=list)  # stored tokens per layer after the prompt
    chunk: int | None = None
    query_aware: bool = True
    device: str = "cpu"
    peak_device_mb: float | None = None


@dataclass
class Result:
    answer: str
    token_ids: list[int]
    stats: Stats

    def to_dict(self) -> dict:
        return {"answer": self.answer, "token_ids": self.token_ids, "stats": asdict(self.stats)}


@cache
def cached_load(name: str, device: str = "cpu", dtype: str = "float32"):
    return models.load(name, device=device, dtype=dtype)


def completion_prompt(context: str, question: str, answer_prefix: str = "") -> tuple[str, str]:
    """Completion-style prompt (chat templates cost SmolLM2 most needle hits): context, then the question."""
    return context, f"\n\nQuestion: {question}\nAnswer:" + (f" {answer_prefix}" if answer_prefix else "")


def _full_kv_bytes(cache_: SieveCache) -> int:
    """Bytes an unmodified cache would hold now: every seen token on full layers, as stored on the others."""
    total = 0
    for layer in cache_.layers:
        if layer.keys is None:
            continue
        per_token = layer.keys.shape[0] * layer.keys.shape[1] * layer.keys.shape[3] * layer.keys.element_size() * 2
        tokens = layer.seen if isinstance(layer, SieveLayer) else layer.keys.shape[-2]
        total += per_token * tokens
    return total


def _forward(model, ids: torch.Tensor, cache_: SieveCache) -> torch.Tensor:
    out = model(input_ids=ids, past_key_values=cache_, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1, :]


def _feed(model, ids: torch.Tensor, cache_: SieveCache, chunk: int | None) -> torch.Tensor:
    step = chunk or ids.shape[1]
    logits = None
    for start in range(0, ids.shape[1], step):
        logits = _forward(model, ids[:, start : start + step], cache_)
    return logits


def _validate(prompt_len: int, context_len: int, max_new_tokens: int, limit: int | None) -> None:
    if context_len == 0:
        raise TokensieveError("the context is empty")
    if limit and prompt_len + max_new_tokens > limit:
        raise TokensieveError(
            f"prompt of {prompt_len} tokens + {max_new_tokens} new tokens exceeds the model's maximum of {limit}"
        )


def generate(
    model: str = models.DEFAULT_MODEL,
    context: str = "",
    question: str = "",
    policy: str | Policy = "snapkv",
    budget: float | str | Budget = 0.25,
    *,
    chunk: int | None = None,
    max_new_tokens: int = 32,
    query_aware: bool = True,
    answer_prefix: str = "",
    sinks: int = 4,
    window: int = 32,
    device: str = "cpu",
    dtype: str = "float32",
    stop_at_newline: bool = False,
) -> Result:
    """Answer `question` about `context` with `policy` at `budget`, and measure what it cost.

    query_aware: the question is inside the scored prompt (compression sees it); otherwise the context is
    compressed first and the question is appended afterwards without further eviction.
    chunk: feed the prompt `chunk` tokens at a time, evicting after each, so peak memory ~ budget + chunk.
    """
    if chunk is not None and chunk < 1:
        raise TokensieveError(f"chunk must be a positive token count, got {chunk}")
    if max_new_tokens < 1:
        raise TokensieveError("max_new_tokens must be at least 1")
    if not isinstance(budget, Budget):
        budget = parse_budget(budget, sinks=sinks, window=window)
    policy_obj = policy if isinstance(policy, Policy) else make(policy, budget=budget)
    net, tokenizer = cached_load(model, device, dtype)
    context_text, question_text = completion_prompt(context, question, answer_prefix)
    ctx_ids = tokenizer(context_text, return_tensors="pt").input_ids if context.strip() else torch.empty(1, 0)
    q_ids = tokenizer(question_text, add_special_tokens=False, return_tensors="pt").input_ids
    limit = getattr(net.config.get_text_config(), "max_position_embeddings", None)
    _validate(ctx_ids.shape[1] + q_ids.shape[1], ctx_ids.shape[1] if context.strip() else 0,
              max_new_tokens, limit)
    ctx_ids, q_ids = ctx_ids.long().to(net.device), q_ids.to(net.device)
    prompt_len = ctx_ids.shape[1] + q_ids.shape[1]
    eos = set(_as_list(net.generation_config.eos_token_id) + _as_list(tokenizer.eos_token_id))

    cache_ = SieveCache(net.config)
    generated: list[int] = []
    budget_base = prompt_len if query_aware else ctx_ids.shape[1]
    with torch.inference_mode(), PeakMemory(net.device) as peak, apply(net, policy_obj, budget_base) as session:
        start = now()
        if query_aware:
            logits = _feed(net, torch.cat([ctx_ids, q_ids], 1), cache_, chunk)
        else:
            _feed(net, ctx_ids, cache_, chunk)
            session.compress = False
            logits = _feed(net, q_ids, cache_, chunk)
        _sync(net.device)
        prefill_s = now() - start
        kv_full, kv_kept, kept = _full_kv_bytes(cache_), cache_.kv_bytes(), cache_.stored_tokens()
        session.compress = False
        start = now()
        for step in range(max_new_tokens):
            token = int(logits.argmax(-1)[0])
            generated.append(token)
            newline = stop_at_newline and "\n" in tokenizer.decode([token])
            if token in eos or newline or step == max_new_tokens - 1:
                break
            logits = _forward(net, torch.tensor([[token]], device=net.device), cache_)
        _sync(net.device)
        decode_s = now() - start
    steps = max(len(generated) - 1, 0)
    stats = Stats(
        policy=policy_obj.name, budget=budget.value, prompt_tokens=prompt_len, new_tokens=len(generated),
        prefill_s=round(prefill_s, 4), decode_tok_s=round(steps / decode_s, 3) if steps and decode_s else 0.0,
        peak_rss_mb=round(peak.rss_mb, 1), kv_bytes_full=kv_full, kv_bytes_kept=kv_kept, kept_tokens=kept,
        chunk=chunk, query_aware=query_aware, device=str(net.device), peak_device_mb=peak.device_mb,
    )
    answer = tokenizer.decode([t for t in generated if t not in eos], skip_special_tokens=True)
    return Result(answer=answer.strip(), token_ids=generated, stats=stats)


def _as_list(value) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [int(value)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
