"""The compiled dequantization of a selector's coded rows (`core/dequantize_rows.cpp`): bit-identical to the torch
path it replaces and to dequantizing everything, on every layout the store makes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensieve.core.kernels import unbuildable
from tokensieve.core.quant import GROUP, QuantizedRows

WHY_NOT = unbuildable()  # a CPU without AVX2, or no C++ compiler: the torch paths are tested elsewhere
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))


@settings(max_examples=30, deadline=None)
@given(bits=st.sampled_from([4, 8]), head_dim=st.sampled_from([16, 24, 32, 64, 128]), batch=st.integers(1, 2),
       heads=st.integers(1, 3), groups=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       spare=st.sampled_from([0, 64]), picked=st.integers(1, 80), seed=st.integers(0, 2**16))
def test_compiled_rows_equal_the_torch_path_bit_for_bit(bits, head_dim, batch, heads, groups, spare, picked, seed):
    torch.manual_seed(seed)
    store = QuantizedRows(bits, GROUP)
    for count in groups:  # appends into spare room, then growing buffers: heads strided, rows contiguous
        tokens = count * GROUP
        store.append(torch.randn(batch, heads, tokens, head_dim) * 4, torch.randn(batch, heads, tokens, head_dim),
                     spare=spare)
    rows = torch.randint(0, store.rows, (batch, heads, picked))
    fast = store.dequantize_rows(rows, torch.float32)
    plain = store.dequantize_rows(rows, torch.float32, kernel=False)
    whole = [t.gather(2, rows[..., None].expand(-1, -1, -1, head_dim)) for t in store.dequantize(torch.float32)]
    for got, reference, everything in zip(fast, plain, whole, strict=True):
        assert torch.equal(got, reference) and torch.equal(got, everything)
    for kernel in (True, False):  # keys alone or values alone: the same rows, the other part not read
        keys, no_values = store.dequantize_rows(rows, torch.float32, kernel=kernel, values=False)
        no_keys, values = store.dequantize_rows(rows, torch.float32, kernel=kernel, keys=False)
        assert no_values is None and no_keys is None
        assert torch.equal(keys, whole[0]) and torch.equal(values, whole[1])


@settings(max_examples=20, deadline=None)
@given(bits=st.sampled_from([4, 8]), tokens=st.integers(1, 200), picked=st.integers(1, 40), seed=st.integers(0, 99),
       kernels=st.booleans())
def test_a_quantized_layer_reads_keys_alone_and_values_alone_as_it_reads_both(bits, tokens, picked, seed, kernels):
    """`gather_keys` and `gather_values` (QuestVote reads its candidates' keys, then the chosen values) equal
    `gather`'s two parts bit for bit, from the sinks, the codes and the newest rows, compiled or not."""
    from tokensieve.core.quant_layer import QuantizedLayer

    torch.manual_seed(seed)
    layer = QuantizedLayer(bits)
    layer.update(torch.randn(1, 2, tokens, 32), torch.randn(1, 2, tokens, 32))
    layer.compact()
    slots = torch.randint(0, tokens, (1, 2, picked))
    with pytest.MonkeyPatch.context() as patch:
        if not kernels:
            patch.setenv("TOKENSIEVE_KERNELS", "off")
        keys, values = layer.gather(slots)
        whole_keys, whole_values = layer.rows()
        index = slots[..., None].expand(-1, -1, -1, 32)
        assert torch.equal(keys, whole_keys.gather(2, index)) and torch.equal(values, whole_values.gather(2, index))
        assert torch.equal(layer.gather_keys(slots), keys) and torch.equal(layer.gather_values(slots), values)


def test_a_head_dim_the_kernel_cannot_read_in_whole_vectors_takes_the_torch_path():
    store = QuantizedRows(8, GROUP)
    store.append(torch.randn(1, 1, GROUP, 20), torch.randn(1, 1, GROUP, 20))
    assert store.kernels(torch.device("cpu")) is None and store.kernels(torch.device("meta")) is None
    rows = torch.tensor([[[0, 5, GROUP - 1]]])
    whole = store.dequantize(torch.float32)[0].gather(2, rows[..., None].expand(-1, -1, -1, 20))
    assert torch.equal(store.dequantize_rows(rows, torch.float32)[0], whole)


def test_a_row_outside_the_store_is_refused():
    store = QuantizedRows(4, GROUP)
    store.append(torch.randn(1, 1, GROUP, 64), torch.randn(1, 1, GROUP, 64))
    with pytest.raises(RuntimeError, match="outside the coded rows"):
        store.dequantize_rows(torch.tensor([[[GROUP]]]), torch.float32)
