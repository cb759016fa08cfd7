"""transformers' QuantizedCache (HQQ backend) as a peer of the kv-store suite (issue 28, step 3): a real cell on a
real model, through the same grid and scoring as tokensieve's own cells, its bytes found by walking the cache."""

from __future__ import annotations

import pytest

from tokensieve.bench.cell import run_cell
from tokensieve.bench.peers import hf_cache
from tokensieve.bench.peers.venv import PeerFailed
from tokensieve.bench.runner import grid
from tokensieve.bench.suites import check_methods, suite
from tokensieve.bench.summary import budget_check
from tokensieve.errors import TokensieveError


def test_the_method_strings_name_a_code_width_and_group_or_get_one_clear_error():
    assert hf_cache.settings_of("hf:quantized@int4") == (4, 64)
    assert hf_cache.settings_of("hf:quantized@int2") == (2, 64)
    assert hf_cache.settings_of("hf:quantized@int4-g32") == (4, 32)
    with pytest.raises(PeerFailed, match="choose from hf:quantized@int4, hf:quantized@int2"):
        hf_cache.settings_of("hf:quantized@int8")
    for bad in ("hf:quantized@int4-g", "hf:quantized@int4-g0", "hf:quantized@int4-gx", "hf:quantized@int4-g-5"):
        with pytest.raises(PeerFailed, match="unknown transformers quantized cache"):
            hf_cache.settings_of(bad)
    with pytest.raises(TokensieveError, match="unknown transformers quantized cache"):
        check_methods(["hf:quantized@int3"])


def test_smaller_groups_hold_more_scales_on_a_real_config(smollm2):
    import torch

    net, _ = smollm2
    held = {}
    for group in (32, 64):
        cache = hf_cache.quantized_cache(net.config, 4, group)
        with torch.inference_mode():
            net(input_ids=torch.arange(100, 300)[None], cache=cache, use_cache=True, logits_to_keep=1)
        held[group] = hf_cache.held_bytes(cache)
    assert held[32] > held[64]


@pytest.mark.slow  # one 4k-token cell: about a minute
def test_a_kv_store_cell_runs_on_transformers_quantized_cache_and_counts_its_bytes(smollm2):
    part = suite("kv-store").parts[0]
    assert "hf:quantized@int4" in part.methods
    [cell] = grid(part.models, part.cases[1:2], ["hf:quantized@int4"], [0.125])
    row = run_cell(cell)
    m = row["metrics"]
    assert row["status"] == "ok" and row["quality"] == 1.0, m  # this case's answer survives int4 (measured)
    # HQQ int4 over groups of 64 with its scales and zero-points: about 0.16x of a float32 cache at 4k tokens
    assert 0.10 * m["kv_bytes_full"] < m["kv_bytes_kept"] < 0.25 * m["kv_bytes_full"]
    assert m["peer"]["hqq"] != "missing" and budget_check(row) is None  # no budget applies: it keeps every token
