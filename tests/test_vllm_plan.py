"""The vLLM plugin's pure parts, in tokensieve's own venv: the hole both vLLM processes derive, the options a
request may carry, and the choice of kept tokens."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tokensieve.vllm.plan import WINDOW, BadOptions, Rule, parse, plan
from tokensieve.vllm.scoring import choose, observed_queries, scores


def test_plan_at_the_issue_shape():
    hole = plan(4096, 0.125, 128)
    assert (hole.keep_blocks, hole.tail_block, hole.kept_tokens, hole.freed_blocks) == (3, 31, 512, 28)
    assert plan(4096, 1.0, 128) is None  # budget 1.0 is plain vLLM
    assert plan(200, 0.25, 128) is None  # no whole block to free


@given(n=st.integers(64, 40_000), budget=st.floats(0.01, 0.99), block=st.sampled_from([32, 64, 128, 256]))
def test_plan_keeps_whole_blocks_within_the_budget(n, budget, block):
    hole = plan(n, budget, block)
    if hole is None:
        return
    assert 1 <= hole.keep_blocks < hole.tail_block
    assert WINDOW <= hole.tail_tokens < block + WINDOW  # the recent window and the partial block stay in place
    assert hole.kept_tokens + hole.hidden_tokens == n
    # never above the budget, except the one block always kept for the sinks
    assert hole.kept_tokens <= max(math.ceil(budget * n), block + hole.tail_tokens)


@pytest.mark.parametrize(("args", "message"), [
    ({"tokensieve_policy": "h2o"}, "unknown tokensieve_policy 'h2o'"),
    ({"tokensieve_budget": 7}, "tokensieve_budget 7 must be a ratio"),
    ({"tokensieve_budget": True}, "tokensieve_budget True must be a ratio"),
    ({"tokensieve_budget": "0.5"}, "tokensieve_budget '0.5' must be a ratio"),
    ({"tokensieve_budgt": 0.5}, "unknown tokensieve option 'tokensieve_budgt'"),
    ({"tokensieve_every": -1}, "tokensieve_every -1 must be a whole number of tokens >= 0"),
    ({"tokensieve_every": 12.5}, "tokensieve_every 12.5 must be a whole number"),
    ({"tokensieve_policy": "quest_paged", "tokensieve_every": 128}, "tokensieve_every applies to eviction"),
])
def test_bad_options_name_the_problem(args, message):
    with pytest.raises(BadOptions, match=message):
        parse(args, Rule("snapkv", 1.0))


def test_options_fall_back_to_the_server_default():
    default = Rule("streaming_llm", 0.5)
    assert parse(None, default) == default
    assert parse({"tokensieve_budget": 0.25, "other_plugin_key": 1}, default) == Rule("streaming_llm", 0.25)
    assert not parse({"tokensieve_budget": 1}, default).evicts


def test_a_selector_selects_and_never_evicts():
    rule = parse({"tokensieve_policy": "quest_paged", "tokensieve_budget": 0.125}, Rule("snapkv", 1.0))
    assert rule.selects and not rule.evicts
    assert not parse({"tokensieve_policy": "quest_paged", "tokensieve_budget": 1.0}, Rule("snapkv", 1.0)).selects
    assert not Rule("snapkv", 0.25).selects


@given(n=st.integers(64, 9000), budget=st.floats(0.01, 0.99), block=st.sampled_from([32, 128]),
       every=st.integers(1, 600), generated=st.integers(0, 3000))
def test_eviction_during_decode_keeps_the_kept_count(n, budget, block, every, generated):
    """Each decode-time eviction widens the hole by whole blocks and leaves the kept count as after prefill; both
    vLLM processes see the same hole at the same length, and no chunk may run past a compaction point."""
    hole = plan(n, budget, block, every=every)
    if hole is None:
        return
    assert hole.every_tokens >= every and hole.every_tokens % block == 0  # rounded up to whole blocks
    computed = n + generated
    assert computed - hole.hidden_at(computed) - generated % hole.every_tokens == hole.kept_tokens
    assert hole.tail_block_at(computed) * block <= computed - WINDOW
    point = hole.next_compaction(computed)
    assert point == n + (generated // hole.every_tokens + 1) * hole.every_tokens
    assert hole.hidden_at(point) - hole.hidden_at(computed) == hole.every_tokens
    assert hole.next_compaction(n - 1) == n and hole.hidden_at(n - 1) == 0
    assert plan(n, budget, block).next_compaction(computed) is None  # no `every`: only after prefill


def test_options_carry_every():
    assert parse({"tokensieve_budget": 0.25, "tokensieve_every": 256}, Rule("snapkv", 1.0)) == \
        Rule("snapkv", 0.25, 256)


@pytest.mark.parametrize("policy", ["snapkv", "streaming_llm", "knorm"])
def test_choose_fills_the_kept_blocks_before_the_tail(policy):
    torch.manual_seed(0)
    n, hole = 700, plan(700, 0.3, 64)
    keys, queries = torch.randn(n, 3, 16), torch.randn(32, 9, 16)
    kept = choose(scores(policy, queries, keys, 0.25), hole.tail_start, hole.keep_blocks * 64)
    assert kept.shape == (3, hole.keep_blocks * 64)
    assert (kept[:, :4] == torch.arange(4)).all()  # the sinks
    assert (kept.diff(dim=-1) > 0).all() and (kept < hole.tail_start).all()
    if policy == "streaming_llm":  # the most recent tokens before the tail
        assert (kept[:, 4:] == torch.arange(hole.tail_start - kept.shape[1] + 4, hole.tail_start)).all()


@pytest.mark.parametrize("policy", ["snapkv", "tova", "streaming_llm", "knorm"])
def test_scores_equal_tokensieves_own_policies(policy):
    """The plugin scores vLLM's token-major tensors with the same formula as tokensieve's policy on its view."""
    from tokensieve import make
    from tokensieve.core.view import LayerView

    torch.manual_seed(1)
    n, q_heads, kv_heads, dim = 300, 6, 2, 16
    queries, keys = torch.randn(n, q_heads, dim), torch.randn(n, kv_heads, dim)
    view = LayerView(0, 0, 1, queries.transpose(0, 1)[None], keys.transpose(0, 1)[None],
                     torch.zeros(1, kv_heads, n, dim), torch.arange(n).expand(1, kv_heads, n), n, 0.25, {})
    ours = scores(policy, queries[-observed_queries(policy):], keys, 0.25)
    assert torch.allclose(ours, make(policy).score(view)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("args", "message"), [
    (["bench", "serve", "--engine", "vllm", "--methods", "full,h2o:0.5"], "runs full or snapkv"),
    (["bench", "serve", "--engine", "vllm", "--parts", "sweep"], "measures parts batch and capacity"),
    (["bench", "serve", "--engine", "sglang"], "unknown engine 'sglang'"),
    (["bench", "serve", "--engine", "vllm", "--block-size", "48"], "needs a multiple of 32"),
    (["vllm", "serve", "--budget", "7"], "tokensieve_budget 7.0 must be a ratio"),
    (["vllm", "serve", "--policy", "h2o"], "unknown tokensieve_policy 'h2o'"),
    (["vllm", "serve", "--every", "-5"], "tokensieve_every -5 must be a whole number"),
    (["vllm", "serve", "--policy", "quest_paged", "--every", "128"], "tokensieve_every applies to eviction"),
])
def test_vllm_commands_refuse_bad_input_with_one_line(tmp_path, args, message):
    from typer.testing import CliRunner

    from tokensieve.cli import app

    result = CliRunner().invoke(app, [*args, *(["--out", str(tmp_path / "x.json")] if args[0] == "bench" else [])])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("policy", ["snapkv", "tova", "streaming_llm", "knorm"])
def test_decode_time_scores_equal_tokensieves_own_policies(policy):
    """At a decode-time eviction the plugin scores the kept tokens (as slot numbers: all older than the queries)
    and the recent ones; tokensieve scores its view of the same tokens at their true positions. Same choice."""
    from tokensieve import make
    from tokensieve.core.view import LayerView

    torch.manual_seed(2)
    q_heads, kv_heads, dim, kept, recent, w = 6, 2, 16, 64, 160, 32
    chosen_earlier = torch.randperm(900)[: kept - 4].sort().values + 4
    true = torch.cat([torch.arange(4), chosen_earlier, torch.arange(1000, 1000 + recent)])
    slots = torch.cat([torch.arange(kept), true[kept:]])
    queries, keys = torch.randn(w, q_heads, dim), torch.randn(len(true), kv_heads, dim)
    view = LayerView(0, 0, 1, queries.transpose(0, 1)[None], keys.transpose(0, 1)[None],
                     torch.zeros(1, kv_heads, len(true), dim), true.expand(1, kv_heads, -1), 1000 + recent, 0.25, {})
    theirs = make(policy).score(view)[0]
    observe = observed_queries(policy)
    ours = scores(policy, queries[-observe:] if observe else queries[:0], keys, 0.25, slots)
    if policy != "streaming_llm":  # which ranks by position: slot numbers keep the order, not the values
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert torch.equal(choose(ours, kept + 96, kept), choose(theirs, kept + 96, kept))


def channel_major_writer(keys, values, cache, slots):
    """A stand-in for vLLM's vec layout: in each (block, head) tile, keys channel-major, values token-major."""
    blocks, heads, block_size, double = cache.shape
    tiles = cache.view(blocks, heads, 2, block_size * (double // 2))
    for token, slot in enumerate(slots.tolist()):
        b, t = divmod(slot, block_size)
        tiles[b, :, 0, t::block_size] = keys[token]
        tiles[b, :, 1, t * (double // 2): (t + 1) * (double // 2)] = values[token]


def test_the_layout_is_learnt_from_the_write_op_and_reads_tokens_back():
    from tokensieve.vllm.layout import UnreadableLayout, probe

    torch.manual_seed(3)
    cache = torch.zeros(4, 3, 32, 2 * 16)
    layout = probe(channel_major_writer, cache)
    keys, values, slots = torch.randn(100, 3, 16), torch.randn(100, 3, 16), torch.randperm(128)[:100]
    channel_major_writer(keys, values, cache, slots)
    read_keys, read_values = layout.read(cache, torch.tensor([0, 1, 2, 3]))
    assert torch.equal(read_keys[slots], keys) and torch.equal(read_values[slots], values)
    assert torch.equal(layout.read(cache, torch.tensor([2]))[0], read_keys[64:96])

    def lossy(keys, values, cache, slots):  # e.g. codes with scales: not one place per (token, channel)
        channel_major_writer(keys * 0, values, cache, slots)

    with pytest.raises(UnreadableLayout, match="not stored exactly once"):
        probe(lossy, cache)
