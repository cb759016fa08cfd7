"""The speed commands on the real model: rows for full, each method and the attention-free bound."""

import pytest
import torch
from typer.testing import CliRunner

from tokensieve.cli import app
from tokensieve.sparse.kernel_speed import kernel_speed
from tokensieve.sparse.speed import BOUND, NoAttention, decode_speed, prefill_speed


def test_the_bound_policy_returns_zeros_in_the_interface_layout():
    query, key = torch.randn(1, 6, 5, 8), torch.randn(1, 2, 9, 8)
    out, weights = NoAttention().attend(None, None, query, key, key, None)
    assert out.shape == (1, 5, 6, 8) and not out.any() and weights is None


def test_decode_speed_compares_with_full_and_the_bound(smollm2):
    rows = {r["method"]: r for r in decode_speed("smollm2-135m", 300, 0.25, ["hisa"], steps=3, repeats=1)}
    assert list(rows) == ["full", "hisa", BOUND]
    assert rows["full"]["speedup"] == 1.0 and rows["full"]["token_agreement"] == 1.0
    assert 0 <= rows["hisa"]["token_agreement"] <= 1 and rows[BOUND]["token_agreement"] is None
    assert rows[BOUND]["budget"] is None and rows["hisa"]["budget"] == 0.25
    assert all(r["decode_tok_s"] > 0 and r["context_tokens"] == rows["full"]["context_tokens"] for r in rows.values())


def test_prefill_speed_reports_quality_except_for_the_bound(smollm2):
    rows = {r["method"]: r for r in prefill_speed("smollm2-135m", 700, 0.25, ["hisa"], repeats=1,
                                                   score_tokens=64, block=64)}
    assert rows["full"]["ppl_rise_pct"] == 0 and rows["hisa"]["ppl_last_tokens"] > 1
    assert rows[BOUND]["ppl_last_tokens"] is None and rows[BOUND]["prefill_s"] > 0


def test_kernel_speed_times_each_method_against_sdpa(smollm2):
    rows = kernel_speed("smollm2-135m", 512, 0.25, ["fasa", "hisa"], repeats=2)
    assert [r["method"] for r in rows] == ["full", "fasa", "hisa"]
    assert all(r["ms_per_layer"] > 0 for r in rows) and rows[0]["speedup"] == 1.0


@pytest.mark.parametrize("args, message", [
    (["speed", "kernel", "--tokens", "10"], "--tokens >= 64"),
    (["speed", "kernel", "--methods", "nope"], "unknown policy 'nope'"),
    (["speed", "decode", "--budget", "1.5"], "budget"),
])
def test_speed_commands_refuse_bad_input_in_one_line(args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
