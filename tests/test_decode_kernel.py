"""The CPU decode-attention kernel (`core.decode_kernel`): equal to sdpa within float rounding on every shape it takes,
never used for a call it cannot compute exactly, and on real models the same greedy tokens as the model's own
attention, in `apply()` and in the server's packed step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensieve.core.decode_kernel import KernelAttention, attend, takes, with_kernel
from tokensieve.core.hooks import apply
from tokensieve.core.kernels import unbuildable
from tokensieve.data.corpus import haystack
from tokensieve.methods import make

WHY_NOT = unbuildable()  # a CPU without AVX2, or no C++ compiler: the torch paths are tested elsewhere
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))
ATTEND = attend  # the real kernel, which a spy below calls


def sdpa(module, query, key, value, attention_mask, scaling=None, **kwargs):
    """The reference: torch's sdpa as transformers calls it (output [batch, tokens, heads, head_dim])."""
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=scaling,
                                         enable_gqa=query.shape[1] != key.shape[1])
    return out.transpose(1, 2).contiguous(), None


def cache_view(kv_heads: int, tokens: int, head_dim: int, spare: int) -> torch.Tensor:
    """The first `tokens` rows of a cache buffer with `spare` free rows: heads strided, rows contiguous."""
    return torch.randn(1, kv_heads, tokens + spare, head_dim)[:, :, :tokens]


@settings(max_examples=40, deadline=None)
@given(kv_heads=st.sampled_from([1, 2, 3]), group=st.sampled_from([1, 2, 3, 4, 7]),
       head_dim=st.sampled_from([32, 64, 128, 256]), tokens=st.integers(1, 700), spare=st.sampled_from([0, 5]),
       seed=st.integers(0, 2**16))
def test_the_kernel_equals_sdpa_on_every_shape_it_takes(kv_heads, group, head_dim, tokens, spare, seed):
    torch.manual_seed(seed)
    query = torch.randn(1, kv_heads * group, 1, head_dim) * 2
    keys, values = cache_view(kv_heads, tokens, head_dim, spare), cache_view(kv_heads, tokens, head_dim, spare)
    scale = head_dim ** -0.5
    expected = F.scaled_dot_product_attention(query, keys, values, scale=scale, enable_gqa=group > 1)
    got = attend(query, keys, values, scale)
    # The stated tolerance is relative over the output (L2): elementwise, an output near 0 has no relative floor.
    assert got.shape == expected.shape and (got - expected).norm() <= 1e-5 * expected.norm()


def test_a_long_cache_stays_within_the_stated_tolerance():
    """At 4k tokens the kernel and sdpa differ by summation order only: within 2e-6 relative (docs)."""
    torch.manual_seed(0)
    query, keys, values = torch.randn(1, 9, 1, 64), cache_view(3, 4096, 64, 64), cache_view(3, 4096, 64, 64)
    exact = F.scaled_dot_product_attention(query.double(), keys.double(), values.double(), enable_gqa=True)
    for out in (attend(query, keys, values, 64 ** -0.5),
                F.scaled_dot_product_attention(query, keys, values, enable_gqa=True)):
        assert (out.double() - exact).norm() / exact.norm() < 2e-6


@pytest.mark.parametrize("case", ["mask", "two tokens", "bf16", "dropout", "softcap", "window", "head_dim 48",
                                  "batch 2", "sinks", "strided rows"])
def test_calls_the_kernel_cannot_take_go_to_the_models_attention_unchanged(case):
    torch.manual_seed(0)
    shape = {"two tokens": (1, 6, 2, 64), "head_dim 48": (1, 6, 1, 48), "batch 2": (2, 6, 1, 64)}
    query = torch.randn(*shape.get(case, (1, 6, 1, 64)))
    keys = torch.randn(query.shape[0], 2, 40, query.shape[-1])
    values = torch.randn_like(keys)
    if case == "strided rows":
        keys = torch.randn(1, 2, 64, 40).transpose(2, 3)
    mask = torch.ones(1, 1, query.shape[2], 40, dtype=torch.bool) if case in ("mask", "two tokens") else None
    kwargs = {"dropout": {"dropout": 0.1}, "softcap": {"softcap": 30.0}, "window": {"sliding_window": 16},
              "sinks": {"s_aux": torch.zeros(6)}}.get(case, {})
    if case == "bf16":
        query, keys, values = query.bfloat16(), keys.bfloat16(), values.bfloat16()
    assert not takes(query, keys, values, mask, kwargs)
    seen = []
    attention = KernelAttention(lambda *args, **kw: seen.append((args, kw)) or ("dense", None))
    assert attention(None, query, keys, values, mask, **kwargs) == ("dense", None)
    assert attention.calls == 0 and len(seen) == 1


def test_a_call_it_takes_runs_the_kernel_and_returns_what_sdpa_returns():
    torch.manual_seed(0)
    query, keys, values = torch.randn(1, 6, 1, 64), cache_view(2, 300, 64, 7), cache_view(2, 300, 64, 7)
    attention = KernelAttention(sdpa)
    out, weights = attention(None, query, keys, values, None, scaling=0.2, dropout=0.0, sliding_window=None)
    expected, _ = sdpa(None, query, keys, values, None, scaling=0.2)
    assert attention.calls == 1 and weights is None and out.shape == expected.shape == (1, 1, 6, 64)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_off_cpu_or_when_not_asked_the_models_attention_is_returned_as_it_is():
    assert with_kernel(sdpa, False, torch.device("cpu")) is sdpa
    assert with_kernel(sdpa, True, torch.device("meta")) is sdpa  # any other device: nothing to do there
    assert isinstance(with_kernel(sdpa, True, torch.device("cpu")), KernelAttention)


def _greedy(net, ids: torch.Tensor, kernel: bool, new: int):
    with torch.inference_mode(), apply(net, make("full"), decode_kernel=kernel) as session:
        out = net.generate(ids, max_new_tokens=new, do_sample=False, output_logits=True,
                           return_dict_in_generate=True, pad_token_id=0)
    return out.sequences[0, ids.shape[1]:].tolist(), torch.cat(out.logits), session.dense


@pytest.mark.real
def test_on_smollm2_greedy_through_the_kernel_gives_the_same_tokens(smollm2):
    """A 1,500-token needle prompt, 24 greedy tokens: the same tokens, logits within 1e-4 of the largest, and every
    decode step of every layer ran the kernel."""
    net, tok = smollm2
    text = haystack(tok, 1500) + "\nThe secret number is 4817.\n" + haystack(tok, 200, offset=9000)
    ids = tok(text + "\nQuestion: what is the secret number?\nAnswer:", return_tensors="pt").input_ids
    plain, plain_logits, _ = _greedy(net, ids, False, 24)
    fast, fast_logits, attention = _greedy(net, ids, True, 24)
    assert fast == plain
    assert (fast_logits - plain_logits).abs().max() < 1e-4 * plain_logits.abs().max()
    assert attention.calls == 23 * net.config.num_hidden_layers  # the 23 steps after the prompt's forward


@pytest.mark.real
def test_the_servers_packed_step_through_the_kernel_gives_the_same_tokens(smollm2):
    """Two sequences decode together, one under full cache and one under SnapKV at 25 %: each gives the tokens the
    engine gives without the kernel."""
    from tokensieve.serve.engine import Engine, Request

    net, tok = smollm2
    prompts = [haystack(tok, 900) + "\n\nThe essay says that", haystack(tok, 700, offset=5000) + "\n\nIn short,"]
    answers = {}
    for kernel in (False, True):
        engine, outs = Engine(net, tok, decode_kernel=kernel), {}
        for prompt, (policy, budget) in zip(prompts, (("full", 1.0), ("snapkv", 0.25)), strict=True):
            outs[policy] = []
            engine.submit(Request(tok(prompt).input_ids, 20, policy, budget, ignore_eos=True), outs[policy].append)
        engine.run_until_idle()
        answers[kernel] = {p: "".join(e.text for e in events) for p, events in outs.items()}
        if kernel:
            assert engine.dense.calls > 0
    assert answers[True] == answers[False]


def test_bench_serve_refuses_a_kernel_method_outside_the_batch_part():
    from typer.testing import CliRunner

    from tokensieve.cli import app

    for args in (["--methods", "full+kernel", "--parts", "sweep"], ["--methods", "full+fast", "--parts", "batch"],
                 ["--methods", "full+kernel", "--engine", "vllm"]):
        done = CliRunner().invoke(app, ["bench", "serve", *args])
        assert done.exit_code == 2 and done.stderr.strip().count("\n") == 0, done.output


@pytest.mark.real
def test_generate_with_the_decode_kernel_gives_the_same_answer(tmp_path, monkeypatch):
    """`tokensieve generate --decode-kernel` on SmolLM2: the same greedy tokens as without it, every decode step's
    layers through the kernel; with tree decoding too (its one-token steps take the kernel); tree decoding under
    int8 weights without it is refused with one line."""
    import json

    from typer.testing import CliRunner

    from tokensieve.cli import app
    from tokensieve.core import decode_kernel

    calls = []
    monkeypatch.setattr(decode_kernel, "attend", lambda *args: calls.append(1) or ATTEND(*args))
    context = tmp_path / "context.txt"
    context.write_text("The launch code is 7261. " + "The sky was grey and the sea was calm. " * 60)
    args = ["generate", "-q", "What is the launch code?", "-c", str(context), "--policy", "full", "--budget", "1",
            "--max-new-tokens", "8", "--json"]
    answers = {}
    for kernel in (False, True):
        done = CliRunner().invoke(app, args + (["--decode-kernel"] if kernel else []))
        assert done.exit_code == 0, done.output
        answers[kernel] = json.loads(done.stdout)
        assert bool(calls) == kernel
    assert answers[True]["token_ids"] == answers[False]["token_ids"]
    assert len(calls) == (len(answers[True]["token_ids"]) - 1) * 30  # SmolLM2's 30 layers, each decode step
    tree = CliRunner().invoke(app, args + ["--decode-kernel", "--decode", "lookup"])
    assert tree.exit_code == 0, tree.output
    assert json.loads(tree.stdout)["token_ids"] == answers[True]["token_ids"]
    refused = CliRunner().invoke(app, args + ["--weights", "int8", "--decode", "lookup"])
    assert refused.exit_code == 2 and refused.stderr.strip().count("\n") == 0, refused.output
    assert "decode kernel" in refused.stderr
