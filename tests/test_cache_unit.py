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


def _layer(rows: int, batch: int = 1, heads: int = 2, dim: int = 4):
    from tokensieve.core.cache import SieveLayer

    layer = SieveLayer()
    keys = torch.arange(batch * heads * rows * dim, dtype=torch.float32).view(batch, heads, rows, dim)
    layer.update(keys, keys + 0.5)
    layer.state["score"] = torch.arange(rows, dtype=torch.float32).expand(batch, heads, rows).clone()
    return layer, keys


def test_a_layer_truncates_rolls_back_and_stores_skipped_forwards_at_true_positions():
    layer, keys = _layer(10)
    layer.truncate(7, 7)
    assert (layer.stored, layer.seen) == (7, 7) and torch.equal(layer.keys, keys[:, :, :7])
    assert layer.state["score"].shape[-1] == 7
    # a draft tree of 3 rows was written after 7; nodes 0 and 2 are accepted
    layer.update(keys[:, :, 7:10], keys[:, :, 7:10])
    layer.rollback(3, torch.tensor([0, 2]))
    assert (layer.stored, layer.seen) == (9, 9)
    assert torch.equal(layer.keys[:, :, 7], keys[:, :, 7]) and torch.equal(layer.keys[:, :, 8], keys[:, :, 9])
    assert layer.positions[0, 0].tolist() == list(range(9))
    assert layer.state["score"][0, 0, -2:].tolist() == [0.0, 0.0]  # the new rows' state, in the kept order
    # a skipped forward of 5 tokens stores 2 of them (offsets 1 and 4) at positions 10 and 13
    layer.skip_next(torch.tensor([[1, 4]]), 5)
    layer.update(keys[:, :, :2], keys[:, :, :2])
    assert layer.positions[0, 1, -2:].tolist() == [10, 13] and layer.seen == 14 and layer.skipping is None


def test_session_override_restores_and_close_removes_what_a_policy_hooked(tiny_llama):
    from tokensieve.core.hooks import dense_attention
    from tokensieve.core.session import Session

    session = Session(policy=tokensieve.make("snapkv", 0.5), dense=dense_attention(None, "sdpa"))
    seen = []
    with session.override(policy=tokensieve.make("full"), compress=False, observer=lambda m, q: seen.append(q)):
        assert session.policy.name == "full" and not session.compress
        session.after_attention(None, "q")
    assert session.policy.name == "snapkv" and session.compress and session.observer is None and seen == ["q"]
    # TokenSkip registers its layer hooks per session: none is left on the model after apply()
    hooks = sum(len(m._forward_pre_hooks) for m in tiny_llama.modules())
    with torch.inference_mode(), tokensieve.apply(tiny_llama, tokensieve.make("fastv", 0.5)) as active:
        tiny_llama(_ids(40))
        assert active.hooks and sum(len(m._forward_pre_hooks) for m in tiny_llama.modules()) > hooks
    assert sum(len(m._forward_pre_hooks) for m in tiny_llama.modules()) == hooks and not active.hooks
