"""Is a benchmark difference real? Intervals and paired tests, stdlib only (no scipy).

- Rates (every score 0 or 1): Wilson (1927) score interval.
- Other scores (RULER recall such as 0.75, fidelity, ...): Efron (1979) percentile bootstrap of the mean.
- Paired 0/1 outcomes on the same cases: McNemar (1947) exact test, i.e. the two-sided binomial test on the
  discordant pairs, computed exactly with integers; the interval for the difference in rates is Newcombe's (1998)
  square-and-add interval for paired data (his method 10): the two Wilson intervals combined through the phi
  correlation of the pairs (with the n/2 correction, as in Fagerland, Lydersen & Laake 2014).
- Paired non-binary scores: percentile bootstrap of the mean difference over resampled cases for the interval, and
  a paired sign-flip randomization test (Fisher 1935) for p. For 0/1 scores that test *is* the exact McNemar test.
  (A p read off the bootstrap shares would be 0 for three cases that all move the same way; the sign-flip p is 0.25.)

A paired difference counts as significant only when both agree: p < 1 - confidence AND the interval excludes 0.
They are separate procedures and can disagree near the boundary: the exact McNemar test is conservative, so e.g.
16 vs 6 discordant of 161 gives p = 0.052 while Newcombe's interval just excludes 0; the verdict is then "n.s.".
Differences are always method - reference (b - a), so a positive diff means the method scored higher.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

EXACT_SIGN_FLIP = 12  # enumerate all 2**m sign patterns up to this many non-zero differences, else sample


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int
    method: str  # "wilson" | "bootstrap"


@dataclass(frozen=True)
class Paired:
    diff: float  # mean of b - a
    low: float
    high: float
    p: float
    n: int
    discordant: tuple[int, int] | None  # McNemar: (a passes & b fails, a fails & b passes); else None
    method: str  # "mcnemar" | "bootstrap"
    confidence: float = 0.95

    @property
    def significant(self) -> bool:
        return self.p < 1 - self.confidence and (self.low > 0 or self.high < 0)


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2)


def _binary(values: Sequence[bool | float]) -> bool:
    return all(v in (0, 1) for v in values)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for successes / n; (0, 1) when there is no data."""
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    z = _z(confidence)
    if n == 0:
        return 0.0, 1.0
    p, z2 = successes / n, z * z
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return low, high


def _percentile(sorted_values: list[float], confidence: float) -> tuple[float, float]:
    r, alpha = len(sorted_values), 1 - confidence
    lo = min(r - 1, math.floor(alpha / 2 * r))
    hi = max(0, math.ceil((1 - alpha / 2) * r) - 1)
    return sorted_values[lo], sorted_values[hi]


def _bootstrap_means(values: list[float], resamples: int, seed: int) -> list[float]:
    rng, n = random.Random(seed), len(values)
    return sorted(math.fsum(rng.choices(values, k=n)) / n for _ in range(resamples))


def bootstrap_mean(values: Sequence[float], confidence: float = 0.95, resamples: int = 2000,
                   seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (Efron)."""
    _z(confidence)
    xs = [float(v) for v in values]
    if not xs:
        return math.nan, math.nan
    if min(xs) == max(xs):  # also n == 1: every resample has the same mean
        return xs[0], xs[0]
    return _percentile(_bootstrap_means(xs, resamples, seed), confidence)


def interval(values: Sequence[float], kind: str = "auto", confidence: float = 0.95, resamples: int = 2000,
             seed: int = 0) -> Interval:
    """Mean of `values` with an interval: Wilson when every value is 0/1 ("auto"), else the bootstrap."""
    if kind == "auto":
        kind = "wilson" if _binary(values) else "bootstrap"
    n = len(values)
    estimate = math.fsum(values) / n if n else math.nan
    if kind == "wilson":
        if not _binary(values):
            raise ValueError("a Wilson interval needs 0/1 values; use kind='bootstrap' for fractional scores")
        low, high = wilson(round(sum(values)), n, confidence)
    elif kind == "bootstrap":
        low, high = bootstrap_mean(values, confidence, resamples, seed)
    else:
        raise ValueError(f"kind must be 'auto', 'wilson' or 'bootstrap', got {kind!r}")
    return Interval(estimate, low, high, n, kind)


def _check_pairs(a: Sequence[float], b: Sequence[float]) -> None:
    if len(a) != len(b):
        raise ValueError(f"paired scores need the same cases in the same order; got {len(a)} vs {len(b)}")


def _binomial_two_sided(k: int, d: int) -> float:
    """Exact two-sided p of k (or fewer) of d under Bin(d, 1/2): 2 * P(X <= min(k, d-k)), at most 1."""
    if d == 0:
        return 1.0
    k = min(k, d - k)
    term, tail = 1, 1  # C(d, 0); integers stay exact for any d
    for i in range(k):
        term = term * (d - i) // (i + 1)
        tail += term
    return min(1.0, 2 * tail / 2**d)  # int / int is correctly rounded even for huge d


def mcnemar(a: Sequence[bool | float], b: Sequence[bool | float], confidence: float = 0.95) -> Paired:
    """Exact McNemar test of paired 0/1 outcomes; diff = rate(b) - rate(a) with Newcombe's (1998) method-10 interval."""
    _check_pairs(a, b)
    if not (_binary(a) and _binary(b)):
        raise ValueError("McNemar needs 0/1 outcomes; use paired_bootstrap for fractional scores")
    n = len(a)
    both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    neither = n - both - a_only - b_only
    p = _binomial_two_sided(b_only, a_only + b_only)
    if n == 0:
        return Paired(0.0, -1.0, 1.0, 1.0, 0, (0, 0), "mcnemar", confidence)
    pb, pa = (both + b_only) / n, (both + a_only) / n
    (lb, ub), (la, ua) = wilson(both + b_only, n, confidence), wilson(both + a_only, n, confidence)
    # phi: correlation of the pairs, with Newcombe's n/2 correction toward 0 for positive values
    margins = (both + b_only) * (a_only + neither) * (both + a_only) * (b_only + neither)
    cross = both * neither - a_only * b_only
    cross = cross - n / 2 if cross > n / 2 else min(cross, 0)
    phi = cross / math.sqrt(margins) if margins else 0.0
    diff = pb - pa
    delta = math.sqrt(max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2))
    eps = math.sqrt(max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2))
    return Paired(diff, max(-1.0, diff - delta), min(1.0, diff + eps), p, n, (a_only, b_only), "mcnemar",
                  confidence)


def _sign_flip_p(diffs: list[float], resamples: int, rng: random.Random) -> float:
    """Two-sided paired randomization test: under H0 each difference's sign is a fair coin."""
    nz = [d for d in diffs if d != 0]
    m = len(nz)
    if m == 0:
        return 1.0
    observed = abs(math.fsum(nz))
    tol = 1e-9 * max(1.0, observed)
    if m <= EXACT_SIGN_FLIP:
        hits = sum(abs(math.fsum(d if mask >> i & 1 else -d for i, d in enumerate(nz))) >= observed - tol
                   for mask in range(2**m))
        return hits / 2**m
    hits = 0
    for _ in range(resamples):
        bits = rng.getrandbits(m)
        hits += abs(math.fsum(d if bits >> i & 1 else -d for i, d in enumerate(nz))) >= observed - tol
    return min(1.0, (hits + 1) / (resamples + 1))  # never 0 from a finite sample (Phipson & Smyth 2010)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], confidence: float = 0.95, resamples: int = 2000,
                     seed: int = 0) -> Paired:
    """Mean of b - a with a percentile interval from resampling cases; p from the paired sign-flip test."""
    _check_pairs(a, b)
    _z(confidence)
    diffs = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    if n == 0:
        return Paired(0.0, math.nan, math.nan, 1.0, 0, None, "bootstrap", confidence)
    diff = math.fsum(diffs) / n
    low, high = bootstrap_mean(diffs, confidence, resamples, seed)
    p = _sign_flip_p(diffs, resamples, random.Random(seed + 1))
    return Paired(diff, low, high, p, n, None, "bootstrap", confidence)


def compare(reference: Sequence[float], method: Sequence[float], confidence: float = 0.95, resamples: int = 2000,
            seed: int = 0) -> Paired:
    """Method vs reference on the same cases: McNemar when every score is 0/1, else the paired bootstrap."""
    _check_pairs(reference, method)
    if _binary(reference) and _binary(method):
        return mcnemar(reference, method, confidence)
    return paired_bootstrap(reference, method, confidence, resamples, seed)


def verdict(p: Paired) -> str:
    if not p.significant:
        return "n.s."
    return "better" if p.diff > 0 else "worse"


def format_interval(iv: Interval, percent: bool = True) -> str:
    """'62% [48–74]' for rates, '0.81 [0.74–0.88]' with percent=False."""
    if math.isnan(iv.estimate):
        return "n/a"
    if percent:
        return f"{iv.estimate * 100:.0f}% [{iv.low * 100:.0f}–{iv.high * 100:.0f}]"
    return f"{iv.estimate:.2f} [{iv.low:.2f}–{iv.high:.2f}]"
