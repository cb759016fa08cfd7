"""What a run settles before its first forward, once, for `generate` and `speculate` alike: the options checked,
the budget parsed and the policy built (one validated object travels down from here), the model loaded and the
prompts encoded. `set_up`'s keywords are the options both share, with their defaults in this one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypedDict

from tokensieve.core.budget import Budget, parse_budget
from tokensieve.core.policy import Policy
from tokensieve.core.quant import check_kv_dtype
from tokensieve.errors import TokensieveError
from tokensieve.methods import make
from tokensieve.models import cached_load
from tokensieve.run.prompt import completion_prompt, validate_lengths


class RunOptions(TypedDict, total=False):
    """The keyword options `generate` and `speculate` share; `set_up` documents them and holds their defaults."""

    chunk: int | None
    max_new_tokens: int
    answer_prefix: str
    sinks: int
    window: int
    evict_every: int | None
    device: str
    weights: str
    stop_at_newline: bool
    stop: Callable[[str], bool] | None
    plain: bool
    kv_dtype: str
    decode_kernel: bool
    packed_gemm: bool


@dataclass
class Setup:
    """A run's settled inputs: the model, the policy, the encoded prompts and the options the loops read."""

    net: object
    tokenizer: object
    policy: Policy
    budget: Budget
    contexts: list[list[int]]  # token ids per sequence
    questions: list[list[int]]
    eos: set[int]
    chunk: int | None
    max_new_tokens: int
    stop_at_newline: bool
    stop: Callable[[str], bool] | None
    plain: bool
    kv_dtype: str
    weights: str
    decode_kernel: bool = False
    packed_gemm: bool = False

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else min(self.eos or {0})

    def ended(self, generated: list[int], token: int) -> bool:
        """Whether a sequence ends at `token` (already appended to `generated`): end of text, a newline when asked,
        the caller's `stop`, or the length limit."""
        newline = self.stop_at_newline and "\n" in self.tokenizer.decode([token])
        stopped = self.stop is not None and self.stop(self.tokenizer.decode(generated, skip_special_tokens=True))
        return token in self.eos or newline or stopped or len(generated) >= self.max_new_tokens

    def answer(self, generated: list[int]) -> str:
        text = self.tokenizer.decode([t for t in generated if t not in self.eos], skip_special_tokens=True)
        return text if self.plain else text.strip()


def set_up(model: str, contexts: list[str], questions: list[str], policy: str | Policy,
           budget: float | str | Budget, *, chunk: int | None = None, max_new_tokens: int = 32,
           answer_prefix: str = "", sinks: int = 4, window: int = 32, evict_every: int | None = None,
           device: str = "cpu", weights: str = "fp32", stop_at_newline: bool = False,
           stop: Callable[[str], bool] | None = None, plain: bool = False, kv_dtype: str = "fp",
           decode_kernel: bool = False, packed_gemm: bool = False) -> Setup:
    """Check the options, build the policy, load the model and encode one prompt per context.

    chunk: feed the prompt `chunk` tokens at a time, evicting after each, so peak memory ~ budget + chunk.
    answer_prefix: text the answer starts with (after "Answer:"). sinks, window: protected by every budget.
    evict_every: for KV policies, evict during decode whenever a layer holds capacity + N (None = the policy's
    default: off, except streaming_llm).
    stop_at_newline: a sequence ends at its first newline. stop: called with a sequence's answer so far after
    each token; True ends that sequence (e.g. code complete).
    plain: the prompt is context + question verbatim, no "Question:/Answer:" frame (code completion).
    kv_dtype: how the cache stores keys and values: "fp" (the compute dtype), "int8" or "int4" (`core/quant.py`),
    for every policy. weights: the model's weight precision, "fp32", "bf16" or "int8" (`tokensieve.weights`).
    decode_kernel: dense one-token decode steps on CPU attend through tokensieve's kernel (`core.decode_kernel`;
    equal to the model's own attention up to float rounding), and Quest's decode step runs as one compiled call
    (`core/quest_step.cpp`; `Session.kernels`). packed_gemm: every product of three rows or more (prefill pieces,
    a batch's decode steps) runs through oneDNN with prepacked weights (`core.gemm`; CPU, fp32 weights; equal to
    aten's within float rounding, one-token steps unchanged)."""
    if chunk is not None and chunk < 1:
        raise TokensieveError(f"chunk must be a positive token count, got {chunk}")
    if max_new_tokens < 1:
        raise TokensieveError("max_new_tokens must be at least 1")
    check_kv_dtype(kv_dtype)
    if packed_gemm and weights != "fp32":
        raise TokensieveError(f"packed linears prepack fp32 weights; weights {weights} have nothing to pack")
    if not contexts or len(questions) != len(contexts):
        raise TokensieveError(f"{len(contexts)} contexts but {len(questions)} questions: give one or one each")
    if not isinstance(budget, Budget):
        budget = parse_budget(budget, sinks=sinks, window=window)
    policy_obj = resolve_policy(policy, budget, evict_every)
    net, tokenizer = cached_load(model, device, weights)
    limit = getattr(net.config.get_text_config(), "max_position_embeddings", None)
    ctx_rows, q_rows = [], []
    for ctx, qst in zip(contexts, questions, strict=True):
        context_text, question_text = completion_prompt(ctx, qst, answer_prefix, plain)
        ctx_ids = tokenizer(context_text).input_ids if ctx.strip() else []
        q_ids = tokenizer(question_text, add_special_tokens=False).input_ids
        validate_lengths(len(ctx_ids) + len(q_ids), len(ctx_ids), max_new_tokens, limit)
        ctx_rows.append(ctx_ids)
        q_rows.append(q_ids)
    eos = set(as_id_list(net.generation_config.eos_token_id) + as_id_list(tokenizer.eos_token_id))
    return Setup(net, tokenizer, policy_obj, budget, ctx_rows, q_rows, eos, chunk, max_new_tokens, stop_at_newline,
                 stop, plain, kv_dtype, weights, decode_kernel, packed_gemm)


def resolve_policy(policy: str | Policy, budget: Budget, evict_every: int | None) -> Policy:
    policy_obj = policy if isinstance(policy, Policy) else make(policy, budget=budget)
    if evict_every is None:
        return policy_obj
    if policy_obj.evictor() is None:
        raise TokensieveError(f"--evict-every applies to KV policies; '{policy_obj.name}' evicts nothing")
    if evict_every < 0:
        raise TokensieveError(f"evict_every must be >= 0 (0 = off), got {evict_every}")
    return replace(policy_obj, evict_every=evict_every)


def as_id_list(value) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [int(value)]
