"""Exact sign-flip and sign tests, vectorised over many samples at once.

The study's reported p-values (analysis.paired_test) and the thousands of simulated studies
behind power curves and the sequential design's error rate use this one test. It equals
scipy.stats.permutation_test's exact test for n <= 16 (tested) and, above, is a Monte Carlo
estimate of it that is some hundred times faster than scipy's at 250 pairs.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats

EXACT_UP_TO = 16  # pairs: all 2**n sign patterns; above, seeded random patterns
RANDOM_PATTERNS = 4000  # in simulations; a study's own test draws STUDY_PATTERNS
STUDY_PATTERNS = 100_000
PATTERN_BLOCK = 10_000  # random patterns drawn and applied this many at a time (memory)
_RELATIVE_TIE = np.finfo(np.float64).eps * 100  # scipy's tolerance for "equally extreme"


@functools.cache
def _patterns(n: int, exact: bool) -> np.ndarray:
    """Sign patterns (P, n): all 2**n when exact, else RANDOM_PATTERNS seeded ones."""
    if exact:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
        return (1 - 2 * bits).astype(np.float64)
    rng = np.random.default_rng(n)
    return rng.choice(np.array([-1.0, 1.0]), size=(RANDOM_PATTERNS, n))


def _pattern_blocks(n: int, exact: bool, random_patterns: int):  # noqa: ANN202 - a generator
    """The patterns as blocks: cached when few, drawn block by block (seeded by n) when many."""
    if exact or random_patterns == RANDOM_PATTERNS:
        yield _patterns(n, exact)
        return
    rng = np.random.default_rng(n)
    for start in range(0, random_patterns, PATTERN_BLOCK):
        size = min(PATTERN_BLOCK, random_patterns - start)
        yield rng.choice(np.array([-1.0, 1.0]), size=(size, n))


def sign_flip_p(
    differences: np.ndarray,
    alternative: str = "two-sided",
    chunk: int = 256,
    exact_up_to: int = EXACT_UP_TO,
    random_patterns: int = RANDOM_PATTERNS,
) -> np.ndarray:
    """p-values of the sign-flip test of mean 0, one per row of differences (B, n) or (n,).

    alternative: two-sided, greater (mean > 0) or less. Exact (all 2**n patterns) for
    n <= exact_up_to (16, like scipy); above, a Monte Carlo estimate from random_patterns
    seeded patterns, with (count + 1) / (R + 1). Simulations may lower exact_up_to: 2**16
    patterns per sample is slow in bulk.
    """
    d = np.atleast_2d(np.asarray(differences, dtype=np.float64))
    n = d.shape[1]
    exact = n <= exact_up_to
    p = np.empty(len(d))
    for start in range(0, len(d), chunk):
        part = d[start : start + chunk]
        observed = part.sum(1, keepdims=True)
        gamma = np.abs(_RELATIVE_TIE * observed)
        greater = np.zeros(len(part), dtype=np.int64)
        less = np.zeros(len(part), dtype=np.int64)
        total = 0
        for patterns in _pattern_blocks(n, exact, random_patterns):
            null = part @ patterns.T  # (b, P): the sum under each pattern; ordering as the mean
            greater += (null >= observed - gamma).sum(1)
            less += (null <= observed + gamma).sum(1)
            total += len(patterns)
        adjust = 0 if exact else 1
        p_greater, p_less = (
            (greater + adjust) / (total + adjust),
            (less + adjust) / (total + adjust),
        )
        if alternative == "greater":
            p[start : start + chunk] = p_greater
        elif alternative == "less":
            p[start : start + chunk] = p_less
        else:
            p[start : start + chunk] = np.minimum(1.0, 2 * np.minimum(p_greater, p_less))
    return p if np.ndim(differences) > 1 else p[:1]


def sign_test_p(successes: int, trials: int, alternative: str = "greater") -> float:
    """Exact binomial sign test: P(at least `successes` of `trials` fair coin flips)."""
    if trials == 0:
        return 1.0
    return float(stats.binomtest(successes, trials, 0.5, alternative=alternative).pvalue)


@functools.cache
def _flipped_sets(
    n: int, exact: bool, random_patterns: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The test's sign patterns as flipped sets: (membership (P, n) of the nonempty sets, their
    sizes, patterns flipping nothing, patterns in all), for sign_flip_p's exact or seeded
    patterns. Sums then a division: a subset summing to exactly 0 has mean exactly 0."""
    blocks = [(patterns < 0) for patterns in _pattern_blocks(n, exact, random_patterns)]
    members = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    sizes = members.sum(1)
    nonempty = members[sizes > 0].astype(np.float64)
    return nonempty, sizes[sizes > 0].astype(np.float64), int((sizes == 0).sum()), len(members)


def sign_flip_interval(
    differences: np.ndarray,
    confidence: float = 0.95,
    exact_up_to: int = EXACT_UP_TO,
    random_patterns: int = STUDY_PATTERNS,
) -> tuple[float, float]:
    """The shifts delta that sign_flip_p(differences - delta) does not reject at 1 - confidence.

    The inverted test, so the interval excludes a value exactly when the test rejects it
    (Hartigan 1969). Flipping the signs of a set F of the shifted differences moves the sum
    by -2 * sum over F of (x_i - delta), so the pattern is at least as extreme upwards as the
    observed sum exactly when the mean of x over F is at most delta: the one-sided p of a shift
    counts the subset means on either side of it, and the interval's ends are order statistics
    of the 2**n - 1 subset means (of the seeded random patterns' sets above exact_up_to, with
    the test's (count + 1) / (R + 1)). Two-sided: rejected when min(1, 2 min(p_greater, p_less))
    < 1 - confidence, as sign_flip_p reports it. The estimate at the interval's centre of the
    test is the mean: there the observed sum is 0, the median of the symmetric null, and p = 1.
    An end that the patterns cannot reach is -inf or inf.
    """
    d = np.asarray(differences, dtype=np.float64)
    n = len(d)
    if n < 2:
        return math.nan, math.nan
    exact = n <= exact_up_to
    members, sizes, empty, total = _flipped_sets(n, exact, random_patterns)
    means = np.sort((members @ d) / sizes)
    adjust = 0 if exact else 1
    alpha = 1 - confidence
    # p_greater(delta) with k subset means <= delta; accepted when 2 p >= alpha (as the test).
    k = np.arange(len(means) + 1)
    accepted = np.minimum(1.0, 2 * ((empty + k + adjust) / (total + adjust))) >= alpha
    first = int(np.argmax(accepted))  # fewest subset means at or below an accepted shift
    low = -math.inf if first == 0 else float(means[first - 1])
    high = math.inf if first == 0 else float(means[len(means) - first])
    return low, high


def smallest_p(pairs: int) -> float:
    """The smallest two-sided p an exact sign-flip test on `pairs` untied pairs can give: only
    the all-one-way pattern and its mirror are that extreme, 2 of 2**pairs."""
    return 2 / 2**pairs


def can_decide(pairs: int, family: int, alpha: float) -> bool:
    """Whether `pairs` untied pairs can reach any verdict with `family` tests under Holm at
    alpha: Holm's first step multiplies the smallest p by the family."""
    return smallest_p(pairs) * max(1, family) < alpha


def smallest_p_words(pairs: int) -> str:
    """The rule above in words, for the notes that explain why no verdict is possible."""
    return f"the exact test's smallest p, 2/2^{pairs} = {smallest_p(pairs):.3g}"
