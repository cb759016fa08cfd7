"""Core v2: eviction during decode, batches, one owner per model, the model's own dense attention, bounded
chunked prefill, session-owned policy state. Tiny random Llama for the mechanics, SmolLM2 for the real thing."""

from __future__ import annotations

import threading

import pytest
import torch
from tiers import sweep
from transformers import LlamaConfig, LlamaForCausalLM

import tokensieve
from tokensieve.core.cache import SieveCache
from tokensieve.data.corpus import haystack
from tokensieve.errors import TokensieveError

KV = ["snapkv", "h2o", "tova", "knorm", "random", "streaming_llm", "window", "pyramid"]


def _ids(n, seed=0, batch=1):
    return torch.randint(0, 128, (batch, n), generator=torch.Generator().manual_seed(seed))


@torch.inference_mode()
@pytest.mark.parametrize("policy", ["streaming_llm", "h2o", "snapkv"])
def test_eviction_during_decode_keeps_the_cache_within_capacity_plus_n(tiny_llama, policy):
    """1,000 generated tokens: the stored tokens never pass capacity + N, and the cache is really that small."""
    every, budget = 16, tokensieve.Budget(48.0, 4, 8)
    cache, stored = SieveCache(tiny_llama.config), []
    with tokensieve.apply(tiny_llama, tokensieve.make(policy, budget, evict_every=every)) as session:
        logits = tiny_llama(_ids(100), past_key_values=cache).logits
        for _ in range(1000):
            token = logits[:, -1:].argmax(-1)
            logits = tiny_llama(token, past_key_values=cache).logits
            stored.append(max(cache.stored_tokens()))
    assert max(stored) <= 48 + every and min(stored) >= 48
    assert session.evictions >= 3 * (1000 // every), "every layer evicted about every N steps"
    assert cache.get_seq_length() == 1100
    rows = max(layer.keys.untyped_storage().nbytes() // (2 * 16 * 4) for layer in cache.layers)
    assert rows <= 48 + every, "the buffer behind the cache never grew past capacity + N rows"


@torch.inference_mode()
def test_without_evict_every_a_one_shot_policy_grows_with_the_generation(tiny_llama):
    cache = SieveCache(tiny_llama.config)
    with tokensieve.apply(tiny_llama, tokensieve.make("snapkv", tokensieve.Budget(48.0, 4, 8))):
        tiny_llama(_ids(100), past_key_values=cache)
        for step in range(50):
            tiny_llama(_ids(1, seed=step), past_key_values=cache)
    assert cache.stored_tokens() == [98, 98, 98]


def test_evict_every_is_refused_for_dynamic_policies_and_negative_values():
    with pytest.raises(TokensieveError, match="evict"):
        tokensieve.generate(context="x", question="y", policy="hisa", budget=0.5, evict_every=8)
    with pytest.raises(TokensieveError, match="evict_every"):
        tokensieve.make("snapkv", 0.5, evict_every=-1)


@torch.inference_mode()
def test_nested_and_concurrent_apply_are_refused_and_the_model_is_restored(tiny_llama):
    before = tiny_llama.config._attn_implementation
    with tokensieve.apply(tiny_llama, tokensieve.make("full")):
        with pytest.raises(TokensieveError, match="already inside tokensieve.apply"), \
                tokensieve.apply(tiny_llama, tokensieve.make("snapkv", 0.5)):
            pass
        errors = []

        def other_thread():
            try:
                with tokensieve.apply(tiny_llama, tokensieve.make("h2o", 0.5)):
                    pass
            except TokensieveError as error:
                errors.append(str(error))

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert errors and "one policy per model" in errors[0]
    assert tiny_llama.config._attn_implementation == before
    with tokensieve.apply(tiny_llama, tokensieve.make("snapkv", 0.5)):  # free again
        pass


@torch.inference_mode()
def test_dense_attention_is_the_models_own_implementation():
    """A model loaded with eager attention stays eager under a policy: same logits as plain eager."""
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, attn_implementation="eager")
    torch.manual_seed(1)
    model = LlamaForCausalLM(config).eval()
    calls = []
    eager = __import__("transformers.models.llama.modeling_llama", fromlist=["x"]).eager_attention_forward

    def counting(*args, **kwargs):
        calls.append(1)
        return eager(*args, **kwargs)

    plain = model(_ids(30)).logits
    import transformers.models.llama.modeling_llama as llama

    original, llama.eager_attention_forward = llama.eager_attention_forward, counting
    try:
        with tokensieve.apply(model, tokensieve.make("full")):
            sieved = model(_ids(30), past_key_values=SieveCache(config)).logits
    finally:
        llama.eager_attention_forward = original
    assert calls, "dense attention went through the model's eager implementation"
    torch.testing.assert_close(sieved, plain, rtol=0, atol=1e-6)
    assert model.config._attn_implementation == "eager"


@torch.inference_mode()
def test_chunked_prefill_never_holds_more_than_capacity_plus_a_chunk(tiny_llama):
    peaks = []
    cache = SieveCache(tiny_llama.config)
    policy = tokensieve.make("snapkv", tokensieve.Budget(0.25, 4, 8))
    with tokensieve.apply(tiny_llama, policy, prompt_tokens=400):
        for start in range(0, 400, 50):
            tiny_llama(_ids(400)[:, start : start + 50], past_key_values=cache)
            peaks.append(max(cache.stored_tokens()))
            rows = max(layer.keys.untyped_storage().nbytes() for layer in cache.layers) // (2 * 16 * 4)
            assert rows <= 100 + 50 + (150 // 4) + 64, "allocated rows stay near capacity + chunk"
    assert max(peaks) <= 100 and peaks[-1] == 100


@torch.inference_mode()
def test_model_generate_runs_after_eviction_on_a_left_padded_batch(tiny_llama):
    ids = _ids(80, batch=2)
    mask = torch.ones_like(ids)
    mask[1, :30] = 0  # sequence 1 is 50 tokens, left-padded
    with tokensieve.apply(tiny_llama, tokensieve.make("snapkv", tokensieve.Budget(0.5, 4, 8))) as session:
        out = tiny_llama.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0)
    assert out.shape == (2, 88)
    caps = session.capacity[0]
    assert caps == [40, 25], "each sequence keeps the budget of its own length"
    layer = session.cache.layers[0]
    assert layer.pad_slots == [0, 15], "the shorter sequence fills its row with padding slots"


# ---------------------------------------------------------------- real model (SmolLM2-135M, short prompts)

@pytest.fixture(scope="module")
def prompts(smollm2):
    _, tok = smollm2
    return [haystack(tok, n, offset=i) for i, n in enumerate([260, 420, 180, 330])]


@pytest.mark.real
def test_a_batch_at_budget_one_gives_exactly_the_single_runs(smollm2, prompts):
    question = "What is this text about?"
    singles = [tokensieve.generate(context=p, question=question, policy="full", budget=1.0, max_new_tokens=10)
               for p in prompts]
    batch = tokensieve.generate(context=prompts, question=question, policy="full", budget=1.0, max_new_tokens=10)
    assert [r.token_ids for r in batch] == [r.token_ids for r in singles]
    assert batch[0].stats.batch == 4


@torch.inference_mode()
@pytest.mark.real
@pytest.mark.parametrize("policy", sweep(KV, ("snapkv", "h2o", "streaming_llm", "pyramid")))
def test_each_sequence_of_a_batch_keeps_the_tokens_it_keeps_alone(smollm2, prompts, policy):
    model, tok = smollm2
    rows = [tok(p).input_ids for p in prompts]

    def kept(rows):
        from tokensieve.run import Batch

        batch = Batch.left_padded(rows, tok.eos_token_id, model.device)
        cache = SieveCache(model.config)
        with tokensieve.apply(model, tokensieve.make(policy, budget=0.25), batch.lengths):
            batch.forward(model, cache, 0, batch.ids.shape[1])
        pads = [0] * len(rows) if cache.pads is None else cache.pads.tolist()
        return [[sorted(p for p in (layer.positions[b, h] - pads[b]).tolist() if p >= 0)
                 for layer in cache.sieve_layers.values() for h in range(layer.positions.shape[1])]
                for b in range(len(rows))]

    together = kept(rows)
    for b, row in enumerate(rows):
        assert kept([row])[0] == together[b], f"sequence {b} kept other tokens inside the batch"


@pytest.mark.real
@pytest.mark.parametrize("policy", sweep(["tokenselect", "hisa", "fasa", "quest", "quest_vote"],
                                         ("tokenselect", "hisa", "quest_vote")))
def test_dynamic_selectors_in_a_padded_batch_stay_within_each_budget(smollm2, prompts, policy):
    results = tokensieve.generate(context=prompts, question="What is this about?", policy=policy, budget=0.25,
                                  max_new_tokens=6)
    longest = max(r.stats.prompt_tokens for r in results) + 6
    assert results[0].stats.attended_tokens["max"] <= -(-longest // 4)
    assert results[0].stats.dense_fallbacks_decode == 0
    assert all(r.token_ids for r in results)


@pytest.mark.real
def test_fasa_calibrates_before_the_forward_and_keys_its_table_by_model(smollm2, prompts, tmp_path):
    from tokensieve.sparse.fasa import model_key

    table = tmp_path / "fasa.json"
    tokensieve.generate(context=prompts[0], question="Why?", policy=tokensieve.make("fasa", 0.25,
                        calibration=str(table)), max_new_tokens=3)
    written = table.stat().st_mtime_ns
    stored = __import__("json").loads(table.read_text())
    assert list(stored) == [model_key(smollm2[0])]
    assert len(stored[model_key(smollm2[0])]["8"]) == 30, "one entry per full-attention layer"
    tokensieve.generate(context=prompts[1], question="Why?", policy=tokensieve.make("fasa", 0.25,
                        calibration=str(table)), max_new_tokens=3)
    assert table.stat().st_mtime_ns == written, "a known model's table is read, never rewritten"


@torch.inference_mode()
@pytest.mark.parametrize("chunked", [False, True])
def test_rolling_positions_equal_a_fresh_run_over_the_kept_tokens(chunked):
    """One layer: a key depends only on its token and position, so after eviction with rolling positions the
    next logits equal those of a fresh model over just the kept tokens at positions 0..k-1."""
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(2)
    model = LlamaForCausalLM(config).eval()
    ids, nxt = _ids(90), _ids(1, seed=5)
    policy = tokensieve.make("streaming_llm", tokensieve.Budget(30.0, 4, 8), positions="rolling", evict_every=0)
    cache = SieveCache(config)
    with tokensieve.apply(model, policy, prompt_tokens=90):
        for lo in range(0, 90, 30 if chunked else 90):
            model(ids[:, lo : lo + 30 if chunked else 90], past_key_values=cache)
        rolled = model(nxt, past_key_values=cache).logits[0, -1]
    kept = cache.layers[0].positions[0, 0][:-1]  # the kept prompt tokens (the new one is last)
    assert kept.tolist() == list(range(4)) + list(range(64, 90))
    fresh = model(torch.cat([ids[:, kept], nxt], 1)).logits[0, -1]
    torch.testing.assert_close(rolled, fresh, atol=1e-4, rtol=1e-4)
    true_positions = tokensieve.make("streaming_llm", tokensieve.Budget(30.0, 4, 8))
    cache = SieveCache(config)
    with tokensieve.apply(model, true_positions):
        model(ids, past_key_values=cache)
        unrolled = model(nxt, past_key_values=cache).logits[0, -1]
    assert (unrolled - fresh).abs().max() > 10 * (rolled - fresh).abs().max(), "true positions are not rolled ones"


def test_rolling_positions_are_refused_where_they_cannot_work(gemma3):
    with pytest.raises(TokensieveError, match="sliding-window"):
        tokensieve.generate("gemma3-270m", context="a b c", question="d?", max_new_tokens=1,
                            policy=tokensieve.make("streaming_llm", 0.5, positions="rolling"))
    with pytest.raises(TokensieveError, match="positions must be"):
        tokensieve.make("snapkv", 0.5, positions="shifted")


@torch.inference_mode()
def test_h2o_accumulates_every_prompt_chunk_even_those_that_evict_nothing(tiny_llama):
    """Chunks below capacity still add their attention: the running scores equal one-shot accumulation."""
    policy = tokensieve.make("h2o", tokensieve.Budget(200.0, 4, 8))  # capacity above the 120 tokens fed
    cache = SieveCache(tiny_llama.config)
    with tokensieve.apply(tiny_llama, policy, prompt_tokens=400):
        for lo in range(0, 120, 40):
            tiny_llama(_ids(120)[:, lo : lo + 40], past_key_values=cache)
    chunked = cache.layers[0].state["h2o"]
    cache = SieveCache(tiny_llama.config)
    with tokensieve.apply(tiny_llama, policy, prompt_tokens=400):
        tiny_llama(_ids(120), past_key_values=cache)
    torch.testing.assert_close(chunked, cache.layers[0].state["h2o"], atol=1e-4, rtol=1e-4)
