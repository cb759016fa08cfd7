"""Code pages (core/code_pages.py): a coded store's page bounds kept as two key codes per channel are exactly the
dequantized keys' bounds, at an eighth (int4) or a quarter (int8) of float32 bounds' bytes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensieve.core.code_pages import CodePages, code_page_bytes
from tokensieve.core.quant_layer import QuantizedLayer
from tokensieve.core.tensors import storage_bytes


def coded_layer(bits: int, tokens: int, heads: int = 2, dim: int = 32, seed: int = 0,
                batch: int = 1) -> QuantizedLayer:
    torch.manual_seed(seed)
    layer = QuantizedLayer(bits)
    layer.update(3 * torch.randn(batch, heads, tokens, dim), torch.randn(batch, heads, tokens, dim))
    layer.compact()
    return layer


def dequantized_extremes(layer: QuantizedLayer, page: int) -> tuple[torch.Tensor, torch.Tensor]:
    keys = layer.coded().dequantize(torch.float32)[0]
    paged = keys.unflatten(2, (keys.shape[2] // page, page))
    return paged.amin(3), paged.amax(3)


@settings(max_examples=40, deadline=None)
@given(bits=st.sampled_from([4, 8]), page=st.sampled_from([1, 2, 4, 8, 16, 32]), tokens=st.integers(69, 400),
       heads=st.integers(1, 3), dim=st.sampled_from([8, 32, 64]), seed=st.integers(0, 99))
def test_code_pages_give_exactly_the_dequantized_keys_bounds(bits, page, tokens, heads, dim, seed):
    layer = coded_layer(bits, tokens, heads, dim, seed)
    pages = CodePages(page)
    codes = pages.update(layer.coded())
    assert codes.dtype == torch.uint8 and codes.shape == (1, heads, layer.coded().rows // page, 2 * dim * bits // 8)
    low, high = pages.bounds(layer.coded(), torch.float32)
    want_low, want_high = dequantized_extremes(layer, page)
    assert torch.equal(low, want_low) and torch.equal(high, want_high)
    assert storage_bytes([codes]) == code_page_bytes(pages.pages, heads, dim, bits)
    assert code_page_bytes(1, 1, dim, bits) * 32 // bits == 2 * dim * 4  # 1/4 (int8) or 1/8 (int4) of float32


def test_pages_are_summarised_once_as_codes_arrive_and_start_over_on_a_new_store():
    layer = coded_layer(4, 200)
    pages = CodePages(16)
    first = pages.update(layer.coded())
    before = first.shape[2]
    torch.manual_seed(1)
    for _ in range(64):  # decode steps: the layer codes a new group once window + group rows gathered
        layer.update(torch.randn(1, 2, 1, 32), torch.randn(1, 2, 1, 32))
    grown = pages.update(layer.coded())
    assert grown.shape[2] > before and torch.equal(grown[:, :, :before], first)
    assert torch.equal(pages.bounds(layer.coded(), torch.float32)[1], dequantized_extremes(layer, 16)[1])
    layer.thaw()
    assert pages.update(layer.coded()) is None and pages.pages == 0
    layer.compact()  # coded anew: a new store, summarised from its start
    assert torch.equal(pages.update(layer.coded()), CodePages(16).update(layer.coded()))


def test_a_page_that_does_not_divide_the_key_group_is_refused():
    with pytest.raises(ValueError, match="do not lie within key groups"):
        CodePages(24).update(coded_layer(4, 200).coded())


@pytest.mark.parametrize(("bits", "batch"), [(4, 1), (8, 1), (4, 2)])
def test_the_compiled_bounds_equal_the_torch_paths_bit_for_bit(bits, batch, monkeypatch):
    from tokensieve.core.quant import QuantizedRows

    layer = coded_layer(bits, 900, heads=3, dim=64, seed=3, batch=batch)
    pages = CodePages(16)
    pages.update(layer.coded())
    compiled = pages.bounds(layer.coded(), torch.float32)
    monkeypatch.setattr(QuantizedRows, "kernels", lambda self, device: None)
    plain = pages.bounds(layer.coded(), torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(compiled, plain, strict=True))
    assert torch.equal(plain[0], dequantized_extremes(layer, 16)[0])


@pytest.mark.parametrize(("group", "page", "summary"),
                         [(16, 16, "code pages"), (16, 32, "pages"), (64, 32, "code pages")])
def test_quest_summarises_by_the_stores_own_key_group(tiny_llama, group, page, summary):
    """A store coded in groups other than the default: pages within a group are code pages, others float32."""
    from tokensieve.core.cache import SieveCache
    from tokensieve.core.hooks import apply
    from tokensieve.methods import make

    cache = SieveCache(tiny_llama.config, kv_dtype="int4")
    for index in cache.sieve_layers:
        cache.layers[index] = QuantizedLayer(4, group=group)
    ids = torch.randint(0, 128, (1, 400), generator=torch.Generator().manual_seed(8))
    with torch.inference_mode(), apply(tiny_llama, make("quest", 0.25, page=page)) as session:
        tiny_llama(input_ids=ids, cache=cache, use_cache=True)
        cache.compact()
        for token in ids[0, :4]:
            logits = tiny_llama(input_ids=token.view(1, 1), cache=cache, use_cache=True).logits
        names = {name for _, name in session.scratch}
    assert summary in names and torch.isfinite(logits).all()
    assert all(layer.group == group and layer.coded().group == group for layer in cache.sieve_layers.values())
