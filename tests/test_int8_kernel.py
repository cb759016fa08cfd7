"""int8 weights' small products through the compiled kernel (`core.int8_kernel`, `int8_linear.cpp`): the same
codes and scales as the default path, float32 activations unrounded; within float rounding of the exact product,
on random shapes and on the real SmolLM2, in `generate` and in the server's step."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tokensieve.core import int8_kernel
from tokensieve.core.int8_kernel import int8_products
from tokensieve.core.kernels import extension, unbuildable
from tokensieve.weights import COMPILED_ROWS, Int8Linear, quantize_linears

WHY_NOT = unbuildable()  # a CPU without AVX2, or no C++ compiler: the default int8 path is tested elsewhere
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))


def exact(rows: torch.Tensor, codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The product in float64, scales after the sum: what the kernel computes up to float32 rounding."""
    return ((rows.double() @ codes.double().T) * scales.double()).float()


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, COMPILED_ROWS), k=st.integers(1, 300), n=st.integers(1, 70), seed=st.integers(0, 99))
def test_the_kernel_is_the_exact_product_up_to_float_rounding(rows, k, n, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, k, generator=generator)
    codes = torch.randint(-127, 128, (n, k), dtype=torch.int8, generator=generator)
    scales = torch.rand(n, generator=generator) + 0.01
    out, reference = extension().int8_linear(x, codes, scales), exact(x, codes, scales)
    assert out.shape == (rows, n) and out.dtype == torch.float32
    bound = 1e-6 * (x.abs().double() @ codes.abs().double().T * scales.double()).max() * k ** 0.5 + 1e-30
    assert (out.double() - reference.double()).abs().max() <= bound


def test_a_rows_result_does_not_depend_on_the_rows_beside_it():
    """Each row is summed in the same order whatever the block it shares: one row alone and the same row among 16
    give bit-identical outputs (what one-token steps and a wider forward need to agree exactly)."""
    torch.manual_seed(1)
    x, codes, scales = torch.randn(16, 200), torch.randint(-127, 128, (40, 200), dtype=torch.int8), torch.rand(40)
    together = extension().int8_linear(x, codes, scales)
    for i in range(16):
        assert torch.equal(extension().int8_linear(x[i:i + 1], codes, scales)[0], together[i])


def test_the_kernel_refuses_what_it_cannot_compute():
    ext = extension()
    codes, scales = torch.ones(3, 8, dtype=torch.int8), torch.ones(3)
    with pytest.raises(RuntimeError, match="takes 1 to 16 rows"):
        ext.int8_linear(torch.ones(COMPILED_ROWS + 1, 8), codes, scales)
    with pytest.raises(RuntimeError, match="rows must be float32"):
        ext.int8_linear(torch.ones(1, 8, dtype=torch.float64), codes, scales)
    with pytest.raises(RuntimeError, match="the rows' k"):
        ext.int8_linear(torch.ones(1, 9), codes, scales)
    with pytest.raises(RuntimeError, match="scales must be float32"):
        ext.int8_linear(torch.ones(1, 8), codes, torch.ones(4))


def test_an_int8_layer_takes_the_kernel_inside_the_block_only_and_for_few_rows():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32))
    quantize_linears(model)
    first: Int8Linear = model[0]
    small, wide = torch.randn(1, 3, 64), torch.randn(2, 9, 64)  # 3 rows: compiled; 18: the default path
    default_small, default_wide = first(small), first(wide)
    with int8_products(model, enabled=True) as count:
        assert count == 2 and first.product is not None
        compiled_small, compiled_wide = first(small), first(wide)
    assert first.product is None
    with int8_products(model, enabled=False) as count:
        assert count == 0 and first.product is None
    assert torch.equal(compiled_wide, default_wide)
    expected = exact(small.reshape(-1, 64), first.weight, first.float_scales).reshape(1, 3, 48) + first.bias
    assert torch.allclose(compiled_small, expected, rtol=1e-5, atol=1e-5)
    assert not torch.equal(compiled_small, default_small)  # the default path rounds the rows to bf16
    assert torch.allclose(compiled_small, default_small, rtol=2e-2, atol=2e-2)


def reference_product(rows: torch.Tensor, codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    return rows @ (codes.float() * scales[:, None]).T


def test_smollm2_int8_greedy_with_the_kernel_is_the_float32_product_of_the_same_codes(monkeypatch):
    """Against the same int8 model multiplied in torch at float32 (codes times scales, then a float32 product):
    logits within 1e-4 relative on a real prompt, and the same 16 greedy tokens in `generate`."""
    from tokensieve.data.corpus import haystack
    from tokensieve.models import cached_load
    from tokensieve.run import generate

    net, tokenizer = cached_load("smollm2-135m", weights="int8")
    ids = tokenizer(haystack(tokenizer, 64), return_tensors="pt").input_ids[:, :64]
    layers = [m for m in net.modules() if isinstance(m, Int8Linear)]
    cache_ids = ids[:, -1:]  # one row per product: the decode shape the kernel takes
    with torch.inference_mode():
        with int8_products(net, enabled=True) as count:
            compiled = net(cache_ids).logits[0, -1]
        assert count == len(layers) == 30 * 7 + 1
        for layer in layers:
            layer.product = reference_product
        try:
            reference = net(cache_ids).logits[0, -1]
        finally:
            for layer in layers:
                layer.product = None
    assert (compiled - reference).norm() / reference.norm() < 1e-4

    calls = []

    class Spy:
        def int8_linear(self, *args):
            calls.append(1)
            return reference_product(*args)

    context, question = haystack(tokenizer, 300), "What is this text about?"
    with_kernel = generate("smollm2-135m", context, question, "full", 1.0, max_new_tokens=16, weights="int8",
                           decode_kernel=True)
    monkeypatch.setattr(int8_kernel, "optional", lambda: Spy())
    with_reference = generate("smollm2-135m", context, question, "full", 1.0, max_new_tokens=16, weights="int8",
                              decode_kernel=True)
    assert calls and with_kernel.token_ids == with_reference.token_ids


@pytest.mark.real
def test_trees_under_int8_weights_with_the_kernel_give_int8_greedys_tokens():
    """The compiled product multiplies each row on its own in float32, so a tree's wide forward equals one-token
    steps up to float rounding, as on fp32 weights: Token Recycling and suffix drafting give greedy's 32 tokens
    under the same int8 weights on a real code prompt. A tree wider than the compiled product's rows is refused."""
    from tokensieve.decode.drafters import CPU_TREE
    from tokensieve.decode.loop import DecodeOptions, speculate
    from tokensieve.decode.tree import DraftTree
    from tokensieve.decode.workloads import prompt
    from tokensieve.errors import TokensieveError
    from tokensieve.run import generate

    p = prompt("code", 21)
    common = dict(max_new_tokens=32, plain=p.plain, answer_prefix=p.answer_prefix, stop=p.stop, weights="int8",
                  decode_kernel=True)
    greedy = generate("smollm2-135m", p.context, p.question, "full", 1.0, **common)
    for decoder in ("recycling", "suffix"):
        tree = speculate("smollm2-135m", p.context, p.question, "full", 1.0, decode=decoder, **common)
        assert tree.token_ids == greedy.token_ids, decoder
        assert tree.stats.accepted_per_step > 1.2, decoder  # the drafts were accepted, not only roots verified
    wide = DecodeOptions(tree=DraftTree.by_prior(**{**CPU_TREE, "nodes": COMPILED_ROWS}))  # + the root
    with pytest.raises(TokensieveError, match=f"exactly greedy up to {COMPILED_ROWS}"):
        speculate("smollm2-135m", p.context, p.question, "full", 1.0, decode="recycling", options=wide, **common)


@pytest.mark.slow  # ~20 s; generate's use of the kernel runs in every tier (above)
def test_the_servers_step_runs_int8_products_compiled(monkeypatch):
    from tokensieve.models import cached_load
    from tokensieve.serve.engine import Engine, Request

    net, tokenizer = cached_load("smollm2-135m", weights="int8")
    calls = []
    real = extension()

    class Spy:
        def int8_linear(self, *args):
            calls.append(args[0].shape[0])
            return real.int8_linear(*args)

    monkeypatch.setattr(int8_kernel, "optional", lambda: Spy())
    for kernel in (False, True):
        engine = Engine(net, tokenizer, max_batch=2, decode_kernel=kernel)
        done = [engine.submit(Request(tokenizer(p).input_ids, 8, "full", 1.0, ignore_eos=True), lambda e: None)
                for p in ("The capital of France is", "def fibonacci(n):")]
        engine.run_until_idle()
        assert all(len(s.generated) == 8 for s in done)
        assert bool(calls) == kernel  # the default engine never calls it
    assert 2 in calls and max(calls) <= COMPILED_ROWS  # two sequences decoding at once (short prompts too)
