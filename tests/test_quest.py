"""Quest (issue 28, step 2): pages ranked by their keys' min/max bound, exact attention over the best pages."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tokensieve.core.budget import Budget
from tokensieve.core.policy import Policy
from tokensieve.core.session import Session
from tokensieve.data.needle import needle_case
from tokensieve.errors import TokensieveError
from tokensieve.methods import make
from tokensieve.run import generate


def test_the_page_whose_bound_is_highest_is_attended_whole_and_the_rest_not():
    n, dim = 96, 8
    keys = torch.zeros(1, 1, n, dim)
    keys[0, 0, 48:64, 0] = 10.0  # page 3: the only page whose channel 0 can give q·k > 0
    keys[0, 0, 16:32, 1] = 10.0  # page 1 answers another direction
    query = torch.zeros(1, 2, 1, dim)
    query[..., 0] = 1.0
    quest = make("quest", Budget(4 + 32 + 16, sinks=4, window=32))
    session = Session(policy=Policy(), dense=None)
    chosen = quest.choose(session, SimpleNamespace(layer_idx=0), query, keys, [52]).indices[0, 0].sort().values
    assert chosen.tolist() == [*range(4), *range(48, 64), *range(64, 96)]  # sinks, page 3, the window


def test_quest_vote_attends_the_votes_best_among_quests_candidates(tiny_llama):
    """Page 1 holds the one key that answers the query most (q·k = 10), page 2 sixteen that answer it well (5):
    Quest's bound ranks page 1 first, whose other keys answer nothing. With one budget of candidates the vote
    keeps Quest's page; with four it takes that one key, then page 2's."""
    from tokensieve.core.cache import SieveCache
    from tokensieve.sparse.base import sparse_attend

    n, dim, free = 96, 16, 16
    keys, values = torch.zeros(1, 2, n, dim), torch.randn(1, 2, n, dim, generator=torch.Generator().manual_seed(9))
    keys[:, :, 20, 0] = 10.0
    keys[:, :, 32:48, 0] = 5.0
    values[:, :, 32:48] = values[:, :, 32:33]  # page 2's tokens alike: any 15 of them attend the same
    query = torch.zeros(1, 4, 1, dim)
    query[..., 0] = 1.0
    protected = [*range(4), *range(64, n)]
    want = {1: protected + list(range(16, 32)), 4: protected + [20, *range(32, 47)]}
    for candidates, slots in want.items():
        cache = SieveCache(tiny_llama.config)
        cache.layers[0].update(keys, values)
        policy = make("quest_vote", Budget(4 + 32 + free, sinks=4, window=32), candidates=candidates)
        session = Session(policy=policy, dense=None)
        session.bind(cache)
        out = policy.attend_pages(session, SimpleNamespace(layer_idx=0, scaling=1.0), query, cache.layers[0],
                                  [4 + 32 + free])
        index = torch.tensor(slots)
        expected = sparse_attend(query, keys[:, :, index], values[:, :, index], 1.0)
        torch.testing.assert_close(out, expected)
        assert session.usage.attended_max == 4 + 32 + free


@pytest.mark.parametrize("policy", ["quest", "quest_vote"])
def test_quest_at_a_budget_covering_the_context_is_full_attention(smollm2, policy):
    _, tok = smollm2
    case = needle_case(tok, 1000, 0.5)
    kw = {"answer_prefix": case.answer_prefix, "max_new_tokens": 8}
    full = generate("smollm2-135m", case.context, case.question, "full", 1.0, **kw)
    for budget in (1.0, "100000"):
        same = generate("smollm2-135m", case.context, case.question, policy, budget, **kw)
        assert same.token_ids == full.token_ids and same.stats.attended_tokens == full.stats.attended_tokens


@pytest.mark.parametrize(("policy", "kv_dtype"), [("quest", "fp"), ("quest", "int4"), ("quest_vote", "int4")])
def test_quest_attends_within_its_budget_over_an_fp_or_int4_store(smollm2, policy, kv_dtype):
    _, tok = smollm2
    case = needle_case(tok, 2000, 0.5)
    result = generate("smollm2-135m", case.context, case.question, policy, 0.125, kv_dtype=kv_dtype,
                      answer_prefix=case.answer_prefix, max_new_tokens=8)
    s = result.stats
    assert 0 < s.attended_tokens["max"] <= -(-(s.prompt_tokens + s.new_tokens) // 8)
    assert s.dense_fallbacks_decode == 0
    assert s.kv_bytes_kept < (0.25 if kv_dtype == "int4" else 1.1) * s.kv_bytes_full


def test_a_bad_page_size_is_one_clear_error():
    with pytest.raises(TokensieveError, match="page=0 must be a whole number"):
        make("quest", 0.25, page=0)
    with pytest.raises(TokensieveError, match="candidates=0 must be a whole number"):
        make("quest_vote", 0.25, candidates=0)


def test_quest_over_int4_dequantizes_only_the_rows_it_selects(smollm2, monkeypatch):
    """Its page bounds come from the code pages and the newest full-precision rows: no step reads every code of a
    layer, and no read of codes is larger than one step's selection."""
    from tokensieve.core.cache import QuantizedLayer
    from tokensieve.core.quant import QuantizedRows

    whole, selected, spans = [], [], []  # every code of a layer read; each selective read; where bounds read rows
    dequantize, gather, span = QuantizedRows.dequantize, QuantizedLayer.gather, QuantizedLayer.span_keys
    monkeypatch.setattr(QuantizedRows, "dequantize", lambda self, *a: whole.append(self.rows) or dequantize(self, *a))
    monkeypatch.setattr(QuantizedLayer, "gather",
                        lambda self, rows: selected.append(rows.shape[-1]) or gather(self, rows))
    monkeypatch.setattr(QuantizedLayer, "span_keys",
                        lambda self, lo, hi: spans.append(lo >= self.frozen) or span(self, lo, hi))
    _, tok = smollm2
    case = needle_case(tok, 2000, 0.5)
    result = generate("smollm2-135m", case.context, case.question, "quest", 0.125, kv_dtype="int4",
                      answer_prefix=case.answer_prefix, max_new_tokens=8)
    assert whole == []  # no step read every code of a layer
    budget = -(-(result.stats.prompt_tokens + 8) // 8)
    assert max(selected) <= budget  # the prompt's pages are bounded from their codes, not read
    assert spans and all(spans)  # the bounds read only rows still at full precision
    assert len(selected) >= 30 * 7  # every step's selection
    assert case.expected in result.answer
