"""On the real packaged models: budget 1.0 is the unmodified model, every policy keeps its budget for real."""

import pytest
import torch
from tiers import sweep

import tokensieve
from tokensieve.core.cache import SieveCache, SieveLayer
from tokensieve.data.needle import needle_case
from tokensieve.kv import full  # noqa: F401
from tokensieve.run import completion_prompt

KV_POLICIES = ["window", "streaming_llm", "h2o", "snapkv", "tova", "tova_layer", "knorm", "random",
              "pyramid"]


def _prompt_ids(model_and_tok, tokens=600):
    model, tok = model_and_tok
    case = needle_case(tok, tokens, 0.5)
    ctx, q = completion_prompt(case.context, case.question, case.answer_prefix)
    return case, tok(ctx + q, return_tensors="pt").input_ids


@pytest.mark.parametrize("which", sweep(["smollm2", "gemma3"], ("smollm2",)))
@torch.inference_mode()
def test_budget_one_reproduces_plain_transformers(which, request):
    model, tok = request.getfixturevalue(which)
    _, ids = _prompt_ids((model, tok))
    plain_logits = model(ids).logits
    plain = model.generate(ids, max_new_tokens=8, do_sample=False)
    for policy in ("full", "snapkv"):  # snapkv at budget 1.0 must be a no-op as well
        with tokensieve.apply(model, tokensieve.make(policy, 1.0)) as session:
            logits = model(ids).logits
            tokens = model.generate(ids, max_new_tokens=8, do_sample=False)
        assert isinstance(session.cache, SieveCache)
        assert torch.equal(plain, tokens), policy
        torch.testing.assert_close(logits, plain_logits, atol=1e-5, rtol=0)


@torch.inference_mode()
def test_generate_api_full_matches_plain_greedy(smollm2):
    model, tok = smollm2
    case, ids = _prompt_ids(smollm2)
    plain = model.generate(ids, max_new_tokens=10, do_sample=False)[0, ids.shape[1]:].tolist()
    result = tokensieve.generate("smollm2-135m", case.context, case.question, "full", 1.0,
                                 answer_prefix=case.answer_prefix, max_new_tokens=10)
    assert result.token_ids == plain[: len(result.token_ids)]
    assert case.expected in result.answer
    # allocated bytes: the same keys and values, plus one int64 position per stored token and head (8 / 512 B),
    # allocated once for the whole run (prompt + max_new_tokens rows), never regrown
    s = result.stats
    rows = (s.prompt_tokens + 10) / s.prompt_tokens
    assert s.kv_bytes_full < s.kv_bytes_kept == s.kv_bytes_end <= s.kv_bytes_full * rows * (1 + 8 / 512)


@pytest.mark.parametrize("policy", sweep(KV_POLICIES, ("streaming_llm", "h2o", "snapkv", "pyramid", "tova_layer")))
def test_every_policy_keeps_its_budget_on_smollm2(policy, smollm2):
    case, _ = _prompt_ids(smollm2, 700)
    result = tokensieve.generate("smollm2-135m", case.context, case.question, policy, 0.25,
                                 answer_prefix=case.answer_prefix, max_new_tokens=4)
    s = result.stats
    kept = s.kept_tokens
    assert len(kept) == 30
    assert sum(kept) <= sum([round(0.25 * s.prompt_tokens) + 1] * 30), "average budget respected"
    assert max(kept) < s.prompt_tokens
    spare = s.evict_every / s.prompt_tokens  # rows reserved for the tokens decoded before the next eviction
    assert s.kv_bytes_kept <= (0.26 + spare) * s.kv_bytes_full * (1 + 8 / 512)
    assert s.decode_tok_s > 0 and s.prefill_s > 0 and s.peak_rss_mb > 100


def test_chunked_prefill_bounds_the_cache(smollm2):
    case, _ = _prompt_ids(smollm2, 1500)
    result = tokensieve.generate("smollm2-135m", case.context, case.question, "snapkv", 0.125, chunk=256,
                                 answer_prefix=case.answer_prefix, max_new_tokens=4)
    s = result.stats
    capacity = -(-s.prompt_tokens // 8)
    assert max(s.kept_tokens) <= capacity + 256


def test_gemma_sliding_layers_are_kept_and_full_layers_evict(gemma3):
    model, tok = gemma3
    case = needle_case(tok, 1200, 0.5)
    result = tokensieve.generate("gemma3-270m", case.context, case.question, "snapkv", 0.25,
                                 answer_prefix=case.answer_prefix, max_new_tokens=4)
    kinds = model.config.layer_types
    kept = result.stats.kept_tokens
    full_layers = [k for k, t in zip(kept, kinds, strict=False) if t == "full_attention"]
    sliding = [k for k, t in zip(kept, kinds, strict=False) if t == "sliding_attention"]
    assert all(k <= -(-result.stats.prompt_tokens // 4) for k in full_layers)
    assert all(k <= model.config.sliding_window for k in sliding)


@torch.inference_mode()
def test_query_agnostic_compresses_only_the_context(smollm2):
    model, tok = smollm2
    case, _ = _prompt_ids(smollm2, 800)
    cache_len = {}
    result = tokensieve.generate("smollm2-135m", case.context, case.question, "knorm", 0.25,
                                 query_aware=False, answer_prefix=case.answer_prefix, max_new_tokens=2)
    question_tokens = len(tok(completion_prompt("", case.question, case.answer_prefix)[1],
                              add_special_tokens=False).input_ids)
    cache_len["kept"] = result.stats.kept_tokens[0]
    context_tokens = result.stats.prompt_tokens - question_tokens
    assert cache_len["kept"] == -(-context_tokens // 4) + question_tokens


def test_sieve_layer_is_used_for_llama(smollm2):
    cache = SieveCache(smollm2[0].config)
    assert all(isinstance(layer, SieveLayer) for layer in cache.layers)
