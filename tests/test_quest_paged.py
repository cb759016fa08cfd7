"""quest_paged (issue 31, stage 3): whole pages per layer, the same for every KV head, as the vLLM plugin attends
them; the page count at a budget, the shared page score, and the method on a real model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tokensieve.core.budget import Budget
from tokensieve.core.pages import best_pages, page_scores, span
from tokensieve.core.policy import Policy
from tokensieve.core.session import Session
from tokensieve.data.needle import needle_case
from tokensieve.errors import TokensieveError
from tokensieve.methods import make
from tokensieve.run import generate


@given(tokens=st.integers(1, 20_000), ratio=st.floats(0.01, 1.0), size=st.sampled_from([16, 32, 64, 128]),
       window=st.integers(0, 200))
def test_a_span_never_exceeds_the_budget_but_for_page_zero_and_the_recent_pages(tokens, ratio, size, window):
    keep = min(tokens, -(-int(ratio * 10_000) * tokens // 10_000))
    pages = span(tokens, keep, size, window)
    if pages is None:  # the budget covers every page, or nothing lies between page 0 and the recent pages
        first_recent = max(1, (tokens - window) // size)
        assert first_recent < 2 or (keep - (tokens - first_recent * size)) // size - 1 >= first_recent - 1
        return
    minimum = size + pages.recent_tokens  # page 0 and the recent pages
    assert pages.attended_tokens <= max(keep, minimum)
    assert pages.attended_tokens < tokens and pages.chosen < pages.candidates
    assert pages.first_recent * size <= max(0, tokens - window)  # the recent pages hold the last `window` tokens
    assert pages.attended_tokens + size > keep or pages.chosen == 0 or keep < minimum  # whole pages, none wasted
    assert pages.attended_pages == 1 + pages.chosen + (-(-tokens // size) - pages.first_recent)


def test_the_page_score_is_one_vote_per_kv_head_and_skips_padding():
    dim = 4
    low, high = torch.zeros(1, 2, 3, dim), torch.zeros(1, 2, 3, dim)
    high[0, 0, 1, 0] = 50.0  # head 0 is sure of page 1
    high[0, 1, 2, 1] = 1.0  # head 1 mildly prefers page 2
    q = torch.zeros(1, 2, 1, dim)
    q[0, :, 0, :2] = 1.0
    scores = page_scores(q, low, high, scale=1.0)
    assert torch.allclose(scores.sum(-1), torch.tensor([2.0]))  # each head's softmax sums to 1
    assert scores[0, 1] > scores[0, 2] > scores[0, 0]
    masked = page_scores(q, low, high, 1.0, valid=torch.tensor([[True, True, False]]))
    assert masked[0, 2].isneginf() and torch.allclose(masked[0, :2].sum(), torch.tensor(2.0))


def test_best_pages_are_ascending_and_padded_past_each_rows_count():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.8, 0.1, 0.2, 0.3]])
    assert best_pages(scores, torch.tensor([2, 1])).tolist() == [[1, 3], [0, 4]]


def test_the_best_page_is_attended_whole_for_every_head_with_page_zero_and_the_recent_pages():
    n, dim, page = 192, 8, 32
    keys = torch.zeros(1, 2, n, dim)
    keys[0, 0, 96:128, 0] = 10.0  # page 3 answers head 0's query
    keys[0, 1, 32:64, 1] = 0.1  # page 1 answers head 1's, barely: it still wins the second place for both heads
    query = torch.zeros(1, 4, 1, dim)
    query[0, :2, 0, 0] = 1.0
    query[0, 2:, 0, 1] = 1.0
    policy = make("quest_paged", Budget(32 + 32 + 64, window=32), page=page)
    session = Session(policy=Policy(), dense=None)
    keeps = policy.budgets(session, n, 1)
    assert keeps == [128]  # page 0, two chosen of pages 1-4, and page 5 (the last 32 tokens)
    chosen = policy.choose(session, SimpleNamespace(layer_idx=0, scaling=1.0), query, keys, keeps)
    for head in range(2):
        slots = chosen.indices[0, head].tolist()
        assert slots == [*range(32), *range(32, 64), *range(96, 128), *range(160, 192)]


def test_bad_page_option_is_one_clear_error():
    with pytest.raises(TokensieveError, match="page=0 must be a whole number >= 1"):
        make("quest_paged", 0.25, page=0)


def test_on_smollm2_budget_one_is_full_attention_and_a_small_budget_attends_whole_pages(smollm2):
    _, tok = smollm2
    case = needle_case(tok, 1000, 0.5)
    kw = {"answer_prefix": case.answer_prefix, "max_new_tokens": 6}
    full = generate("smollm2-135m", case.context, case.question, "full", 1.0, **kw)
    same = generate("smollm2-135m", case.context, case.question, "quest_paged", 1.0, **kw)
    assert same.token_ids == full.token_ids and same.stats.attended_tokens == full.stats.attended_tokens
    policy = make("quest_paged", 0.25, page=32)
    sparse = generate("smollm2-135m", case.context, case.question, policy, 0.25, **kw)
    n = sparse.stats.prompt_tokens
    steps = [span(n + i, -(-(n + i) // 4), 32, 32).attended_tokens for i in range(1, 6)]
    assert sparse.stats.attended_tokens["max"] == max(steps)
    assert sparse.stats.kv_bytes_kept == full.stats.kv_bytes_kept, "page selection evicts nothing"
    assert sparse.stats.dense_fallbacks_decode == 0


def test_a_prompt_too_short_for_its_pages_reads_densely_and_counts_it(smollm2):
    _, tok = smollm2
    case = needle_case(tok, 200, 0.5)  # 128-token pages: page 0 and the recent page already cover every token
    kw = {"answer_prefix": case.answer_prefix, "max_new_tokens": 3}
    full = generate("smollm2-135m", case.context, case.question, "full", 1.0, **kw)
    paged = generate("smollm2-135m", case.context, case.question, "quest_paged", 0.25, **kw)
    assert paged.token_ids == full.token_ids
    assert paged.stats.attended_tokens["max"] == paged.stats.prompt_tokens + paged.stats.new_tokens - 1
    layers = len(paged.stats.kept_tokens)
    assert paged.stats.dense_fallbacks_decode == layers * (paged.stats.new_tokens - 1)
