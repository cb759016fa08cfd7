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
])
def test_bad_options_name_the_problem(args, message):
    with pytest.raises(BadOptions, match=message):
        parse(args, Rule("snapkv", 1.0))


def test_options_fall_back_to_the_server_default():
    default = Rule("streaming_llm", 0.5)
    assert parse(None, default) == default
    assert parse({"tokensieve_budget": 0.25, "other_plugin_key": 1}, default) == Rule("streaming_llm", 0.25)
    assert not parse({"tokensieve_budget": 1}, default).evicts


@pytest.mark.parametrize("policy", ["snapkv", "streaming_llm", "knorm"])
def test_choose_fills_the_kept_blocks_before_the_tail(policy):
    torch.manual_seed(0)
    n, hole = 700, plan(700, 0.3, 64)
    keys, queries = torch.randn(n, 3, 16), torch.randn(32, 9, 16)
    kept = choose(scores(policy, queries, keys, 0.25), hole)
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
    (["vllm", "serve", "--budget", "7"], "tokensieve_budget 7.0 must be a ratio"),
    (["vllm", "serve", "--policy", "h2o"], "unknown tokensieve_policy 'h2o'"),
])
def test_vllm_commands_refuse_bad_input_with_one_line(tmp_path, args, message):
    from typer.testing import CliRunner

    from tokensieve.cli import app

    result = CliRunner().invoke(app, [*args, *(["--out", str(tmp_path / "x.json")] if args[0] == "bench" else [])])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()
