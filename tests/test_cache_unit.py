"""SieveCache on a tiny random Llama: no-op exactness, real shrinking, true positions after eviction."""

import torch
from transformers import DynamicCache

import tokensieve
from tokensieve.core.cache import SieveCache


def _ids(n, seed=0):
    return torch.randint(0, 128, (1, n), generator=torch.Generator().manual_seed(seed))


@torch.inference_mode()
def test_full_policy_reproduces_dynamic_cache(tiny_llama):
    ids = _ids(40)
    plain = tiny_llama(ids, past_key_values=DynamicCache(config=tiny_llama.config)).logits
    with tokensieve.apply(tiny_llama, tokensieve.make("full")):
        sieved = tiny_llama(ids, past_key_values=SieveCache(tiny_llama.config)).logits
    assert torch.equal(plain, sieved)
    assert tiny_llama.config._attn_implementation != "tokensieve", "apply() restores the model"


@torch.inference_mode()
def test_eviction_shrinks_tensors_and_keeps_true_positions(tiny_llama):
    ids = _ids(100)
    cache = SieveCache(tiny_llama.config)
    with tokensieve.apply(tiny_llama, tokensieve.make("streaming_llm", tokensieve.Budget(40.0, 4, 8))):
        tiny_llama(ids, past_key_values=cache)
        assert cache.stored_tokens() == [40, 40, 40]
        assert cache.get_seq_length() == 100, "sequence length counts seen tokens, not stored"
        layer = cache.layers[0]
        expected = list(range(4)) + list(range(64, 100))
        assert layer.positions[0, 0].tolist() == expected
        # the next token must be rotated at position 100, exactly as in a cache holding the same kept tokens
        out = tiny_llama(_ids(1, seed=1), past_key_values=cache).logits
    assert layer.positions[0, 0, -1].item() == 100
    # the reported bytes are the storages really allocated behind every tensor the layers hold
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for lay in cache.layers
                for t in (lay.keys, lay.values, lay._positions, *lay.state.values())}
    assert cache.kv_bytes() == sum(storages.values())
    assert cache.kv_bytes() >= 3 * 2 * (1 * 2 * 41 * 16 * 4), "at least the 41 stored rows per layer"
    assert torch.isfinite(out).all()


@torch.inference_mode()
def test_evicted_attention_equals_attention_over_kept_tokens(tiny_llama):
    """After eviction the next query attends exactly over the kept keys: compare with a manual mask."""
    ids = _ids(60)
    budget = tokensieve.Budget(30.0, 4, 8)
    cache = SieveCache(tiny_llama.config)
    with tokensieve.apply(tiny_llama, tokensieve.make("streaming_llm", budget)):
        tiny_llama(ids, past_key_values=cache)
        sieved = tiny_llama(_ids(1, seed=3), past_key_values=cache).logits[0, -1]
    # reference: the whole sequence with a 4D mask that hides evicted positions from the last query only
    full_ids = torch.cat([ids, _ids(1, seed=3)], 1)
    kept = set(range(4)) | set(range(60 - 26, 61))
    mask = torch.tril(torch.ones(61, 61, dtype=torch.bool))
    mask[-1] = torch.tensor([i in kept for i in range(61)])
    # evicted tokens were seen by every layer during prefill, so only layer-0 equivalence is exact;
    # here all layers evict the same positions (streaming_llm), making the whole stack equivalent
    ref = tiny_llama(full_ids, attention_mask=mask[None, None]).logits[0, -1]
    torch.testing.assert_close(sieved, ref, atol=1e-5, rtol=1e-4)
