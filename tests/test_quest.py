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


def test_quest_at_a_budget_covering_the_context_is_full_attention(smollm2):
    _, tok = smollm2
    case = needle_case(tok, 1000, 0.5)
    kw = {"answer_prefix": case.answer_prefix, "max_new_tokens": 8}
    full = generate("smollm2-135m", case.context, case.question, "full", 1.0, **kw)
    for budget in (1.0, "100000"):
        same = generate("smollm2-135m", case.context, case.question, "quest", budget, **kw)
        assert same.token_ids == full.token_ids and same.stats.attended_tokens == full.stats.attended_tokens


@pytest.mark.parametrize("kv_dtype", ["fp", "int4"])
def test_quest_attends_within_its_budget_over_an_fp_or_int4_store(smollm2, kv_dtype):
    _, tok = smollm2
    case = needle_case(tok, 2000, 0.5)
    result = generate("smollm2-135m", case.context, case.question, "quest", 0.125, kv_dtype=kv_dtype,
                      answer_prefix=case.answer_prefix, max_new_tokens=8)
    s = result.stats
    assert 0 < s.attended_tokens["max"] <= -(-(s.prompt_tokens + s.new_tokens) // 8)
    assert s.dense_fallbacks_decode == 0
    assert s.kv_bytes_kept < (0.25 if kv_dtype == "int4" else 1.1) * s.kv_bytes_full


def test_a_bad_page_size_is_one_clear_error():
    with pytest.raises(TokensieveError, match="page=0 must be a whole number"):
        make("quest", 0.25, page=0)


def test_quest_over_int4_dequantizes_only_the_rows_it_selects(smollm2, monkeypatch):
    """Its page bounds come from the code pages and the newest full-precision rows: no step reads every code of a
    layer, and no read of codes is larger than one step's selection."""
    from tokensieve.core.cache import QuantizedLayer
    from tokensieve.core.quant import QuantizedRows

    whole, selected, spans = [], [], []  # every code of a layer read; each selective read; where bounds read rows
    dequantize, gather, span = QuantizedRows.dequantize, QuantizedLayer.gather, QuantizedLayer.span
    monkeypatch.setattr(QuantizedRows, "dequantize", lambda self, *a: whole.append(self.rows) or dequantize(self, *a))
    monkeypatch.setattr(QuantizedLayer, "gather",
                        lambda self, rows: selected.append(rows.shape[-1]) or gather(self, rows))
    monkeypatch.setattr(QuantizedLayer, "span",
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
