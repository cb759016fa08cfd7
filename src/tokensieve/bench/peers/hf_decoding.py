"""The decode peers, run through transformers' own `generate` on the plain model (no tokensieve hook):
greedy, prompt-lookup decoding and assisted generation with a smaller model of the same tokenizer."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tokensieve.core.memory import now
from tokensieve.errors import TokensieveError

ASSISTANTS = {"qwen2.5-coder-1.5b": "qwen2.5-coder-0.5b"}  # same tokenizer, a smaller model
LOOKUP_TOKENS = 10  # transformers' documented default for prompt_lookup_num_tokens


@dataclass
class PeerStats:
    wall_s: float  # the whole generate call, prefill included
    new_tokens: int


@dataclass
class PeerResult:
    token_ids: list[int]
    stats: PeerStats


def hf_generate(model: str, decoder: str, p, new_tokens: int) -> PeerResult:
    """`new_tokens` greedy tokens of prompt `p` by transformers: `hf:greedy`, `hf:lookup` or `hf:assisted`."""
    from tokensieve.models import cached_load, model_lock
    from tokensieve.run import completion_prompt

    net, tokenizer = cached_load(model)
    extra: dict = {}
    if decoder == "hf:lookup":
        extra = {"prompt_lookup_num_tokens": LOOKUP_TOKENS}
    elif decoder == "hf:assisted":
        if model not in ASSISTANTS:
            raise TokensieveError(f"no assistant model for {model}: assisted generation pairs "
                                  + ", ".join(f"{a} -> {t}" for t, a in ASSISTANTS.items()))
        extra = {"assistant_model": cached_load(ASSISTANTS[model])[0]}
    elif decoder != "hf:greedy":
        raise TokensieveError(f"unknown transformers decoder '{decoder}'")
    context, question = completion_prompt(p.context, p.question, p.answer_prefix, p.plain)
    ids = tokenizer(context).input_ids + tokenizer(question, add_special_tokens=False).input_ids
    inputs = torch.tensor([ids], device=net.device)
    with model_lock(net), torch.inference_mode():
        start = now()
        out = net.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=new_tokens,
                           do_sample=False, top_p=None, top_k=None, temperature=None,
                           pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id, **extra)
        wall = now() - start
    tokens = out[0, len(ids):].tolist()
    return PeerResult(tokens, PeerStats(round(wall, 4), len(tokens)))
