"""Qwen2.5-Coder-0.5B (2 KV heads, GQA group 7, a shape SmolLM2 does not have): every registered policy and
selector runs on it, keeps its budget, and gives from a shared prefix (`prefill` + branch) exactly what it gives
from its own prefill."""

import math

import pytest
import torch
from tiers import sweep

import tokensieve
from tokensieve.data.needle import needle_case
from tokensieve.errors import TokensieveError
from tokensieve.methods import REGISTRY, make
from tokensieve.run import branchable, completion_prompt, generate, prefill

MODEL = "qwen2.5-coder-0.5b"
METHODS = sorted(n for n in REGISTRY if n != "auto")  # auto needs a saved head report (tested on SmolLM2)
KW = {"max_new_tokens": 6, "stop_at_newline": True}
# 128-token pages leave quest_paged nothing to choose in this 226-token prompt (it reads densely and counts it,
# test_quest_paged); 16-token pages let it keep its budget here
OPTIONS = {"quest_paged": {"page": 16}}


def quarter(method: str):
    return make(method, 0.25, **OPTIONS.get(method, {}))


@pytest.fixture(scope="module")
def case(qwen05):
    _, tok = qwen05
    return needle_case(tok, 200, 0.5, 0)


@pytest.fixture(scope="module")
def prefix(case, qwen05):
    return prefill(MODEL, case.context, case.question, answer_prefix=case.answer_prefix, max_new_tokens=6)


def test_the_model_has_the_shape_the_zoo_promises(qwen05):
    model, _ = qwen05
    c = model.config
    assert (c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads) == (24, 14, 2)
    assert c.max_position_embeddings == 32768


@torch.inference_mode()
def test_budget_one_reproduces_plain_transformers(case, qwen05):
    model, tok = qwen05
    ctx, q = completion_prompt(case.context, case.question, case.answer_prefix)
    ids = tok(ctx + q, return_tensors="pt").input_ids
    plain = model.generate(ids, max_new_tokens=6, do_sample=False)
    with tokensieve.apply(model, make("snapkv", 1.0)):
        assert torch.equal(model.generate(ids, max_new_tokens=6, do_sample=False), plain)


@pytest.mark.parametrize("method", sweep(METHODS, ("full", "snapkv", "h2o", "pyramid", "tokenselect", "hisa", "fastv",
                                                   "fastv+snapkv")))
def test_every_method_on_qwen_keeps_its_budget_and_branches_exactly(method, case, prefix):
    kw = {**KW, "answer_prefix": case.answer_prefix}
    policy = quarter(method)
    own = generate(MODEL, case.context, case.question, policy, 0.25, **kw)
    s = own.stats
    keep = -(-s.prompt_tokens // 4)
    if method == "full":
        assert case.expected in own.answer  # the full cache finds the fact
    if policy.skipper() is not None and policy.evictor() is None:
        carried = keep if method != "fastv+hisa" else math.ceil(s.prompt_tokens * make(method).skip_keep)
        if method == "gemfilter":  # every layer holds the selection only
            assert s.kept_tokens == [keep] * len(s.kept_tokens)
        else:  # skipped tokens have no KV in the last layer
            assert s.kept_tokens[-1] == carried < s.kept_tokens[0]
        assert s.dense_fallbacks_decode == 0
    elif method != "full" and policy.evictor() is not None:
        assert max(s.kept_tokens) <= keep + (0 if method != "pyramid" else s.prompt_tokens)
        assert sum(s.kept_tokens) <= keep * len(s.kept_tokens)
    elif method != "full":  # a selector's budget is a share of the tokens cached at each decode step
        assert s.attended_tokens["max"] <= -(-(s.prompt_tokens + s.new_tokens) // 4)
        assert s.dense_fallbacks_decode == 0
    if branchable(quarter(method), s.prompt_tokens - len(prefix.ids)):
        with pytest.raises(TokensieveError, match="cannot branch"):
            generate(MODEL, case.context, case.question, quarter(method), 0.25, prefix=prefix, **kw)
        return
    branched = generate(MODEL, case.context, case.question, quarter(method), 0.25, prefix=prefix, **kw)
    assert branched.token_ids == own.token_ids
    assert branched.stats.kept_tokens == s.kept_tokens
    assert branched.stats.kv_bytes_kept == s.kv_bytes_kept
    assert branched.stats.attended_tokens == s.attended_tokens
    assert branched.stats.shared_prefill_s == round(prefix.seconds, 4)


def test_a_prefix_refuses_another_prompt(case, prefix):
    with pytest.raises(TokensieveError, match="another model or prompt"):
        generate(MODEL, "Other text. " + case.context, case.question, "snapkv", 0.25, prefix=prefix,
                 answer_prefix=case.answer_prefix, **KW)
