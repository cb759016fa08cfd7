"""Quest's compiled decode step (`core/quest_step.cpp`, opt-in with the decode kernel): on every layer shape it takes
it attends the slots a plain reference chooses (protected sinks, window and unfinished page, then whole pages by
their bound, the cut page from its start) within float rounding, over fp, int8 and int4 stores; on SmolLM2 it gives
the torch path's greedy tokens, in `apply()` and in the server's packed step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from tiers import sweep

from tokensieve.core import quest_calls
from tokensieve.core.code_pages import CodePages
from tokensieve.core.hooks import apply
from tokensieve.core.kernels import extension, unbuildable
from tokensieve.core.layer import SieveLayer
from tokensieve.core.quant_layer import QuantizedLayer
from tokensieve.data.corpus import haystack
from tokensieve.methods import make
from tokensieve.sparse.quest import page_extremes

WHY_NOT = unbuildable()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))


def reference(query, layer, page: int, origin: int, keep: int, sinks: int, window: int, scale: float,
              candidates: int = 1) -> torch.Tensor:
    """The step written plainly: every row read, bounds from the rows (pages from slot `origin`), slots chosen one
    by one, sdpa per KV head. With `candidates` > 1 the pages choose that many times `keep` slots, and of those the
    protected ones and the best by the soft vote (each query head's softmax of q.k, summed over the group) stay."""
    keys, values = layer.rows()
    kv_heads, n, dim = keys.shape[1], keys.shape[2], keys.shape[3]
    group = query.shape[1] // kv_heads
    pages = max(0, n - origin) // page
    q = query.reshape(1, kv_heads, group, dim)
    paged = keys[:, :, origin: origin + pages * page].unflatten(2, (pages, page))
    bound = (q.clamp(min=0) @ paged.amax(3).transpose(2, 3) + q.clamp(max=0) @ paged.amin(3).transpose(2, 3)).amax(2)
    first = min(max(sinks, origin), n)
    last = max(first, min(n - window, origin + pages * page))
    out, wide = [], min(n, candidates * keep)
    for g in range(kv_heads):
        recent = max(last, n - window)
        chosen = [*range(first), *range(recent, n), *range(last, recent)][:wide]
        guarded = len(chosen)
        for p in sorted(range(pages), key=lambda p: (-bound[0, g, p].item(), p)):
            span = range(origin + p * page, origin + (p + 1) * page)
            chosen += [t for t in span if first <= t < last][: wide - len(chosen)]
        if candidates > 1:
            votes = torch.softmax(q[0, g] @ keys[0, g, chosen].T, -1).sum(0)
            best = sorted(range(guarded, len(chosen)), key=lambda i: (-votes[i].item(), i))
            chosen = [chosen[i] for i in [*range(min(guarded, keep)), *best][:keep]]
        idx = torch.tensor(chosen)
        out.append(F.scaled_dot_product_attention(q[:, g], keys[:, g, idx], values[:, g, idx], scale=scale))
    return torch.cat(out, 1)[:, None]


def filled_layer(store: str, kv_heads: int, tokens: int, dim: int, seed: int):
    torch.manual_seed(seed)
    layer = SieveLayer() if store == "fp" else QuantizedLayer(int(store[3:]))
    layer.update(torch.randn(1, kv_heads, tokens, dim), torch.randn(1, kv_heads, tokens, dim))
    if store != "fp":
        layer.compact()
    return layer


def summaries(layer, page: int, kept_share: float):
    """What Quest hands the step: over fp, float32 bounds for the first `kept_share` of the complete pages (the
    rest are bounded from their rows); over codes, the code pages of every coded row. -> (origin, low, high, codes)"""
    none = torch.empty(0)
    origin = layer.code_origin()
    if layer.bits is None:
        keys = layer.rows()[0]
        kept = int(kept_share * (keys.shape[2] // page))
        low, high = page_extremes(keys[:, :, : kept * page], page)
        return origin, low, high, none.byte()
    codes = CodePages(page).update(layer.coded())
    return origin, none, none, none.byte() if codes is None else codes


@settings(max_examples=60, deadline=None)
@given(store=st.sampled_from(["fp", "int8", "int4"]), kv_heads=st.integers(1, 3), group=st.integers(1, 5),
       dim=st.sampled_from([32, 64, 128]), tokens=st.integers(5, 700), page=st.sampled_from([4, 16]),
       share=st.floats(0.05, 0.9), sinks=st.integers(0, 6), window=st.integers(0, 40), seed=st.integers(0, 99),
       kept_share=st.floats(0, 1))
def test_the_compiled_step_attends_what_the_plain_reference_chooses(store, kv_heads, group, dim, tokens, page, share,
                                                                   sinks, window, seed, kept_share):
    layer = filled_layer(store, kv_heads, tokens, dim, seed)
    query = torch.randn(1, kv_heads * group, 1, dim)
    keep = max(1, int(share * tokens))
    origin, low, high, codes = summaries(layer, page, kept_share)
    parts = layer.stored_parts()
    got = extension().quest_step(query, low, high, codes, page, origin, keep, sinks, window, parts.head_keys,
                                 parts.head_values, parts.hot_keys, parts.hot_values, parts.codes, parts.bits,
                                 parts.group, dim ** -0.5, 1)
    want = reference(query, layer, page, origin, keep, sinks, window, dim ** -0.5)
    assert got.shape == (1, 1, kv_heads * group, dim)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(store=st.sampled_from(["fp", "int8", "int4"]), kv_heads=st.integers(1, 3), group=st.integers(1, 5),
       dim=st.sampled_from([32, 64]), tokens=st.integers(5, 600), page=st.sampled_from([4, 16]),
       share=st.floats(0.02, 0.5), sinks=st.integers(0, 6), window=st.integers(0, 40), seed=st.integers(0, 99),
       candidates=st.integers(2, 6))
def test_with_candidates_the_compiled_step_attends_the_votes_best_of_the_pages_choice(store, kv_heads, group, dim,
                                                                                      tokens, page, share, sinks,
                                                                                      window, seed, candidates):
    """QuestVote's compiled step: the pages choose `candidates` times the budget, the soft vote over their keys
    the budget (the protected slots first), as the plain reference does it."""
    layer = filled_layer(store, kv_heads, tokens, dim, seed)
    query = torch.randn(1, kv_heads * group, 1, dim)
    keep = max(1, int(share * tokens))
    origin, low, high, codes = summaries(layer, page, 0.5)
    parts = layer.stored_parts()
    got = extension().quest_step(query, low, high, codes, page, origin, keep, sinks, window, parts.head_keys,
                                 parts.head_values, parts.hot_keys, parts.hot_values, parts.codes, parts.bits,
                                 parts.group, dim ** -0.5, candidates)
    want = reference(query, layer, page, origin, keep, sinks, window, dim ** -0.5, candidates)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_bad_page_bounds_or_budgets_are_refused_with_one_error():
    layer = filled_layer("int4", 2, 300, 32, 0)
    parts = layer.stored_parts()
    query = torch.randn(1, 4, 1, 32)
    low = torch.zeros(1, 2, 300 // 16 + 1, 32)
    codes = CodePages(16).update(layer.coded())
    none = torch.empty(0)
    args = (parts.head_keys, parts.head_values, parts.hot_keys, parts.hot_values, parts.codes, parts.bits,
            parts.group, 0.1, 1)
    for bad_low, bad_codes, origin, keep in ((low, none.byte(), 4, 10), (none, codes, 0, 10),
                                             (none, codes[..., :8], 4, 10), (none, codes, 4, 0),
                                             (none, codes, 4, 301)):
        with pytest.raises(RuntimeError, match="page bounds|code pages|keep"):
            extension().quest_step(query, bad_low, bad_low, bad_codes, 16, origin, keep, 4, 32, *args)
    with pytest.raises(RuntimeError, match="candidates"):
        extension().quest_step(query, none, none, codes, 16, 4, 10, 4, 32, *args[:-1], 0)


@settings(max_examples=25, deadline=None)
@given(stores=st.lists(st.sampled_from(["fp", "int8", "int4"]), min_size=1, max_size=5), kv_heads=st.integers(1, 3),
       group=st.integers(1, 4), dim=st.sampled_from([32, 64]), page=st.sampled_from([4, 16]),
       candidates=st.integers(1, 4), seed=st.integers(0, 99), data=st.data())
def test_many_steps_in_one_call_equal_each_step_alone(stores, kv_heads, group, dim, page, candidates, seed, data):
    """The packed step's one call per layer (`quest_steps`): sequences of other lengths, stores and budgets, their
    KV heads shared among the threads, each output bit-identical to its own `quest_step`."""
    steps = []
    for i, store in enumerate(stores):
        tokens = data.draw(st.integers(5, 500), label=f"tokens {i}")
        layer = filled_layer(store, kv_heads, tokens, dim, seed + i)
        origin, low, high, codes = summaries(layer, page, 0.5)
        parts = layer.stored_parts()
        keep = max(1, tokens // data.draw(st.integers(1, 10), label=f"keep share {i}"))
        steps.append((torch.randn(1, kv_heads * group, 1, dim), low, high, codes, page, origin, keep, 4, 32,
                      parts.head_keys, parts.head_values, parts.hot_keys, parts.hot_values, parts.codes, parts.bits,
                      parts.group, dim ** -0.5, candidates))
    together = extension().quest_steps(steps)
    assert len(together) == len(steps)
    for arguments, output in zip(steps, together, strict=True):
        assert torch.equal(output, extension().quest_step(*arguments))


def test_a_bad_step_among_many_is_refused_with_one_error():
    layer = filled_layer("int4", 2, 300, 32, 0)
    parts = layer.stored_parts()
    none = torch.empty(0)
    good = (torch.randn(1, 4, 1, 32), none, none, CodePages(16).update(layer.coded()), 16, 4, 10, 4, 32,
            parts.head_keys, parts.head_values, parts.hot_keys, parts.hot_values, parts.codes, parts.bits,
            parts.group, 0.1, 1)
    with pytest.raises(RuntimeError, match="keep"):
        extension().quest_steps([good, (*good[:6], 0, *good[7:])])
    with pytest.raises(RuntimeError, match="eighteen arguments"):
        extension().quest_steps([good, good[:-1]])


class CountingKernels:
    """The compiled kernels, counting Quest's compiled steps and the calls that ran several at once."""

    def __init__(self) -> None:
        self.steps = self.together = 0

    def quest_step(self, *args):
        self.steps += 1
        return extension().quest_step(*args)

    def quest_steps(self, steps):
        self.steps += len(steps)
        self.together += len(steps) > 1
        return extension().quest_steps(steps)


def needle(tok, length: int, offset: int = 0) -> str:
    return (haystack(tok, length, offset=offset) + "\nThe secret number is 4817.\n"
            + haystack(tok, 200, offset=offset + 9000) + "\nQuestion: what is the secret number?\nAnswer:")


@pytest.mark.real
@pytest.mark.parametrize("method", sweep(["quest", "quest_vote"], ("quest",)))
def test_on_smollm2_the_compiled_step_gives_the_torch_paths_tokens(smollm2, monkeypatch, method):
    """Quest (and QuestVote) at 12.5 % over int4 and over fp on a 1,500-token needle: the same 16 greedy tokens with
    the compiled step, which ran on every layer of every decode step."""
    net, tok = smollm2
    ids = tok(needle(tok, 1500), return_tensors="pt").input_ids
    counting = CountingKernels()
    monkeypatch.setattr(quest_calls, "extension", lambda: counting)
    for kv_dtype in ("int4", "fp"):
        answers = {}
        for kernel in (False, True):
            with torch.inference_mode(), apply(net, make(method, budget=0.125), kv_dtype=kv_dtype,
                                               decode_kernel=kernel):
                out = net.generate(ids, max_new_tokens=16, do_sample=False, pad_token_id=0)
            answers[kernel] = out[0, ids.shape[1]:].tolist()
        assert answers[True] == answers[False], kv_dtype
    assert counting.steps == 2 * 15 * net.config.num_hidden_layers


@pytest.mark.real
def test_the_servers_packed_step_with_the_compiled_quest_gives_the_same_tokens(smollm2, monkeypatch):
    """Two Quest requests over int4 (12.5 % and 25 %) decode together: the same tokens with the decode kernel, where
    both sequences' steps over a layer run in one compiled call."""
    from tokensieve.serve.engine import Engine, Request

    net, tok = smollm2
    counting = CountingKernels()
    monkeypatch.setattr(quest_calls, "extension", lambda: counting)
    prompts = [needle(tok, 1200), needle(tok, 900, offset=5000)]
    answers = {}
    for kernel in (False, True):
        engine, outs = Engine(net, tok, decode_kernel=kernel), []
        engine.hold_decode = True  # both prompts in before either decodes: every decode step has both
        for prompt, budget in zip(prompts, (0.125, 0.25), strict=True):
            outs.append([])
            engine.submit(Request(tok(prompt).input_ids, 12, "quest", budget, ignore_eos=True, kv_dtype="int4"),
                          outs[-1].append)
        while engine.waiting or any(not s.decoding for s in engine.running):
            engine.step()
        engine.hold_decode = False
        engine.run_until_idle()
        answers[kernel] = ["".join(e.text for e in events) for events in outs]
        assert bool(counting.steps) == kernel
    assert answers[True] == answers[False]
    assert counting.together  # the two sequences' steps over a layer ran in one call
