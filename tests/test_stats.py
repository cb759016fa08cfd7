"""bench.stats: Wilson, bootstrap, exact McNemar + Newcombe, paired bootstrap/sign-flip, verdicts."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensieve.bench.stats import (
    Interval,
    Paired,
    bootstrap_mean,
    compare,
    format_interval,
    interval,
    mcnemar,
    paired_bootstrap,
    verdict,
    wilson,
)


def pairs(both: int, a_only: int, b_only: int, neither: int) -> tuple[list[int], list[int]]:
    """Paired 0/1 outcomes from the four cells of the 2x2 table."""
    a = [1] * both + [1] * a_only + [0] * b_only + [0] * neither
    b = [1] * both + [0] * a_only + [1] * b_only + [0] * neither
    return a, b


# --- Wilson -------------------------------------------------------------------------------------------------------

def test_wilson_textbook_values():
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-4)
    low, high = wilson(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=5e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(5, 10, confidence=0.99)[0] < wilson(5, 10)[0]  # wider at higher confidence


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError):
        wilson(3, 2)
    with pytest.raises(ValueError):
        wilson(1, 2, confidence=1.0)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 500), data=st.data(), scale=st.integers(2, 10))
def test_wilson_contains_estimate_and_narrows_with_n(n, data, scale):
    k = data.draw(st.integers(0, n))
    low, high = wilson(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    low2, high2 = wilson(k * scale, n * scale)  # same rate, more data
    assert high2 - low2 < high - low


# --- bootstrap_mean / interval ------------------------------------------------------------------------------------

def test_bootstrap_mean_edges_and_determinism():
    assert all(math.isnan(x) for x in bootstrap_mean([]))
    assert bootstrap_mean([0.4]) == (0.4, 0.4)
    rng = random.Random(1)
    xs = [rng.random() for _ in range(40)]
    assert bootstrap_mean(xs, seed=3) == bootstrap_mean(xs, seed=3)
    low, high = bootstrap_mean(xs)
    assert low < sum(xs) / len(xs) < high


def test_interval_picks_method_by_data():
    iv = interval([1, 0, 1, 1])
    assert iv == Interval(0.75, *wilson(3, 4), 4, "wilson")
    recall = interval([1.0, 0.75, 0.5, 1.0, 0.25])  # RULER recall fractions are not 0/1
    assert recall.method == "bootstrap" and recall.low <= recall.estimate <= recall.high
    assert interval([True, False]).method == "wilson"
    assert interval([0, 1, 1], kind="bootstrap").method == "bootstrap"
    with pytest.raises(ValueError):
        interval([0.5, 1.0], kind="wilson")
    with pytest.raises(ValueError):
        interval([1, 0], kind="exact")


# --- McNemar ------------------------------------------------------------------------------------------------------

def test_mcnemar_exact_p_by_hand():
    a, b = pairs(both=5, a_only=10, b_only=2, neither=3)
    r = mcnemar(a, b)
    hand = 2 * sum(math.comb(12, i) for i in range(3)) / 2**12
    assert r.p == pytest.approx(hand) and round(r.p, 4) == 0.0386
    assert r.discordant == (10, 2) and r.n == 20 and r.diff == pytest.approx(-8 / 20)
    assert mcnemar(*pairs(3, 4, 4, 1)).p == 1.0  # equal discordance


def test_mcnemar_no_discordance_is_not_significant():
    r = mcnemar(*pairs(7, 0, 0, 2))
    assert (r.p, r.diff, r.discordant) == (1.0, 0.0, (0, 0))
    assert r.low <= 0 <= r.high and not r.significant and verdict(r) == "n.s."


def test_mcnemar_large_discordance_is_stable():
    r = mcnemar(*pairs(0, 2600, 2400, 0))
    assert 0 < r.p < 1e-2 and r.diff == pytest.approx(-0.04)


def test_newcombe_interval_matches_published_examples():
    # Fagerland, Lydersen & Laake (2014), paired 2x2 examples: rows = first test, columns = second.
    bentur = mcnemar(*pairs(1, 7, 1, 12))
    assert (bentur.low, bentur.high) == pytest.approx((-0.507, -0.026), abs=1e-3)
    cavo = mcnemar(*pairs(59, 16, 6, 80))
    assert (cavo.low, cavo.high) == pytest.approx((-0.119, -0.005), abs=1e-3)
    # The exact test is more conservative (p = 0.052): both must agree, so the verdict is n.s.
    assert cavo.p == pytest.approx(0.0525, abs=1e-4) and cavo.high < 0 and verdict(cavo) == "n.s."


def test_three_cases_per_cell_cannot_be_told_apart():
    assert verdict(mcnemar([1, 1, 1], [1, 1, 0])) == "n.s."
    r = mcnemar([1] * 9, [1] * 6 + [0] * 3)  # tokenselect 9/9 vs snapkv 6/9
    assert r.p == pytest.approx(0.25) and r.low < 0 < r.high and verdict(r) == "n.s."


def test_twenty_one_sided_failures_in_fifty_is_worse():
    r = compare([1] * 50, [1] * 30 + [0] * 20)
    assert r.method == "mcnemar" and r.discordant == (20, 0)
    assert r.p < 1e-5 and r.high < 0 and r.significant and verdict(r) == "worse"
    assert verdict(compare([1] * 30 + [0] * 20, [1] * 50)) == "better"


def test_mcnemar_rejects_fractional_scores():
    with pytest.raises(ValueError):
        mcnemar([1, 0.5], [1, 1])


# --- paired bootstrap ---------------------------------------------------------------------------------------------

def test_paired_bootstrap_deterministic_shift_and_noise():
    rng = random.Random(7)
    a = [rng.random() for _ in range(60)]
    shifted = [x + 0.2 + rng.gauss(0, 0.05) for x in a]
    r = paired_bootstrap(a, shifted, seed=1)
    assert r == paired_bootstrap(a, shifted, seed=1)
    assert r.method == "bootstrap" and r.discordant is None and r.n == 60
    assert r.low > 0 and r.p < 0.01 and verdict(r) == "better"
    noise = [x + rng.gauss(0, 0.05) for x in a]
    assert verdict(paired_bootstrap(a, noise, seed=1)) == "n.s."


def test_paired_bootstrap_three_cases_same_direction_is_not_significant():
    r = paired_bootstrap([0.75, 1.0, 1.0], [0.5, 0.75, 0.5])
    assert r.high < 0  # every resample is negative, so the percentile interval alone would claim "worse"
    assert r.p == pytest.approx(0.25) and verdict(r) == "n.s."  # the sign-flip p does not


def test_sign_flip_p_equals_exact_mcnemar_on_binary_data():
    a, b = pairs(5, 10, 2, 3)
    assert paired_bootstrap(a, b).p == pytest.approx(mcnemar(a, b).p)


def test_paired_bootstrap_edges():
    assert paired_bootstrap([0.3, 0.6], [0.3, 0.6]).p == 1.0
    assert not paired_bootstrap([], []).significant
    rng = random.Random(2)
    a = [rng.random() for _ in range(30)]
    r = paired_bootstrap(a, [x - 0.1 for x in a], resamples=500)  # sampled sign-flip test (30 non-zero)
    assert 0 < r.p < 0.01 and verdict(r) == "worse"


# --- compare / verdict / format -----------------------------------------------------------------------------------

def test_compare_checks_lengths_and_picks_method():
    with pytest.raises(ValueError, match="same cases"):
        compare([1, 0, 1], [1, 0])
    assert compare([1, 0, 1], [True, False, False]).method == "mcnemar"
    assert compare([1, 0, 1], [1, 0.5, 1]).method == "bootstrap"


def test_verdict_requires_interval_and_p():
    assert verdict(Paired(0.1, 0.02, 0.2, 0.01, 50, None, "bootstrap")) == "better"
    assert verdict(Paired(-0.1, -0.2, -0.02, 0.01, 50, None, "bootstrap")) == "worse"
    assert verdict(Paired(0.1, -0.02, 0.2, 0.01, 50, None, "bootstrap")) == "n.s."
    assert verdict(Paired(0.1, 0.02, 0.2, 0.2, 50, None, "bootstrap")) == "n.s."


def test_format_interval():
    assert format_interval(Interval(0.62, 0.48, 0.74, 50, "wilson")) == "62% [48–74]"
    assert format_interval(Interval(0.81, 0.74, 0.88, 20, "bootstrap"), percent=False) == "0.81 [0.74–0.88]"
    assert format_interval(interval([])) == "n/a"
