"""Property tests on budgets and selectors: never above budget, protected tokens always kept, indices clean."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensieve.core.budget import Budget, allocate, parse_budget
from tokensieve.core.select import protected, topk_keep, vote
from tokensieve.errors import TokensieveError


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 300), sinks=st.integers(0, 8), window=st.integers(0, 40), ratio=st.floats(0.01, 1.0),
    heads=st.integers(1, 4), seed=st.integers(0, 2**16),
)
def test_topk_keep_respects_budget_and_protection(n, sinks, window, ratio, heads, seed):
    budget = Budget(ratio, sinks=sinks, window=window)
    keep = budget.tokens(n)
    positions = torch.arange(n).expand(1, heads, n)
    scores = torch.randn(1, heads, n, generator=torch.Generator().manual_seed(seed))
    guard = protected(positions, n, *budget.protect(keep))
    idx = topk_keep(scores, keep, guard)
    assert idx.shape == (1, heads, min(keep, n))
    assert keep <= n
    for h in range(heads):
        row = idx[0, h]
        assert torch.equal(row, row.unique(sorted=True)), "indices must be unique and sorted"
        must = set(torch.nonzero(guard[0, h]).flatten().tolist())
        assert must <= set(row.tolist()), "sinks and window are always kept"
        assert len(must) <= keep, "protected tokens are charged inside the budget"
    assert keep == (n if budget.is_full else min(n, math.ceil(ratio * n))), "never raised above the ratio"


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 200), keep=st.integers(1, 200), seed=st.integers(0, 999))
def test_topk_keep_picks_the_highest_scores(n, keep, seed):
    scores = torch.randn(1, 1, n, generator=torch.Generator().manual_seed(seed))
    idx = topk_keep(scores, keep)[0, 0]
    kept = scores[0, 0, idx]
    dropped = scores[0, 0, [i for i in range(n) if i not in set(idx.tolist())]]
    if len(dropped) and len(kept):
        assert kept.min() >= dropped.max()


@settings(max_examples=100, deadline=None)
@given(total=st.integers(36, 5000), layers=st.integers(1, 40), kind=st.sampled_from(["uniform", "pyramid"]))
def test_allocation_keeps_the_average_and_the_floor(total, layers, kind):
    sizes = allocate(total, layers, kind, floor=36)
    assert len(sizes) == layers
    assert sum(sizes) == total * layers
    assert min(sizes) >= 36
    if kind == "pyramid" and layers > 2 and total > 200:
        assert sizes[0] > sizes[-1], "lower layers keep more"


def test_vote_sums_group_probabilities():
    scores = torch.randn(2, 6, 10)
    votes = vote(scores, group=3)
    assert votes.shape == (2, 2, 10)
    torch.testing.assert_close(votes.sum(-1), torch.full((2, 2), 3.0))


@pytest.mark.parametrize("text", ["0", "-0.5", "1.5", "nan", "abc", "10"])
def test_bad_budgets_fail_clearly(text):
    with pytest.raises(TokensieveError):
        parse_budget(text, sinks=4, window=32)  # 10 tokens < sinks + window


def test_budget_token_counts():
    assert Budget(1.0).tokens(1000) == 1000
    assert Budget(0.25).tokens(1000) == 250
    assert Budget(100.0).tokens(1000) == 100
    assert Budget(100.0).tokens(50) == 50
    assert Budget(0.01, sinks=4, window=32).tokens(1000) == 10, "a ratio is never silently raised"
    assert Budget(0.01, sinks=4, window=32).protect(10) == (4, 6), "the window shrinks to fit the budget"
    assert Budget(0.5, sinks=4, window=32).protect(3) == (3, 0)
