"""Censored pairs: runs that never reached an accuracy threshold by their last evaluation.

A censored value is a strict lower bound (the run would have needed more), so a pair's sign
is known only sometimes, and the median difference only within bounds. Used by
stats.analysis.paired_evidence for steps_to and seconds_to claims, and by results for the
median time to a threshold.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from mnistlab.stats.signflip import sign_test_p


def censored_signs(pairs: pd.DataFrame, reached: pd.DataFrame) -> np.ndarray:
    """Per seed, the sign of variant - baseline where it is known despite censoring, else NaN.

    A censored value (threshold never reached by the last evaluation) is a strict lower bound:
    the run would have needed more. If the censored run is already at least as large as the
    other, reached, run, it is known to be slower (a censored tie is no tie); otherwise the
    sign is not known, nor when both are censored.
    """
    b, v = pairs["baseline"].to_numpy(float), pairs["variant"].to_numpy(float)
    rb, rv = reached["baseline"].to_numpy(bool), reached["variant"].to_numpy(bool)
    signs = np.sign(v - b)
    signs = np.where(rb & ~rv & (v >= b), 1.0, signs)  # the variant is the slower
    signs = np.where(~rb & rv & (b >= v), -1.0, signs)  # the baseline is
    unknown = (~rb & ~rv) | (rb & ~rv & (v < b)) | (~rb & rv & (v > b))
    return np.where(unknown, np.nan, signs)


def censored_bounds(
    differences: np.ndarray, reached: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) each seed's true difference can be, variant - baseline on the test's
    scale: a censored variant only raises it (up to inf), a censored baseline only lowers it."""
    d = np.asarray(differences, dtype=np.float64)
    rb, rv = reached["baseline"].to_numpy(bool), reached["variant"].to_numpy(bool)
    return np.where(rb, d, -np.inf), np.where(rv, d, np.inf)


def censored_median(
    low: np.ndarray, high: np.ndarray, confidence: float
) -> tuple[float, float, float, float]:
    """(median low, median high, interval low, interval high) of the median per-seed difference
    when each is only known to lie in [low_i, high_i]: the median lies between the medians of
    the bounds, and the order-statistic (sign-test) interval of the median is widened to the
    bounds, so it covers at least its level. An end the bounds leave open is -inf or inf."""
    lows, highs = np.sort(low), np.sort(high)
    n = len(lows)
    if n == 0:
        return (math.nan,) * 4
    rank = int(stats.binom.ppf((1 - confidence) / 2, n, 0.5))  # 1-based rank of the low end
    ci = (-math.inf, math.inf) if rank < 1 else (float(lows[rank - 1]), float(highs[n - rank]))
    return float(np.median(lows)), float(np.median(highs)), *ci


def censored_sign_test(signs: np.ndarray, direction: int) -> tuple[float, int]:
    """(two-sided p, direction of the evidence) of an exact sign test on censored pairs.

    A pair of unknown sign counts against whichever way is being shown: against the claim
    when support is tested, for it when contradiction is. Exact ties are dropped.
    """
    known = signs[~np.isnan(signs)]
    unknown = int(np.isnan(signs).sum())
    favour, against = int((known == direction).sum()), int((known == -direction).sum())
    trials = favour + against + unknown
    p_support = sign_test_p(favour, trials)
    p_contradict = sign_test_p(against, trials)
    evidence = direction if p_support <= p_contradict else -direction
    return min(1.0, 2 * min(p_support, p_contradict)), evidence


def median_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """(median, low, high) with a distribution-free interval from order statistics.

    Censored values go in as +inf (not reached): the median is inf when half or more are,
    and the interval is [x_(l), x_(n-l+1)] with l from the binomial(n, 1/2) quantile; a
    bound that the sample is too small to give is -inf or inf.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    median = float(np.median(x)) if np.isfinite(x[(n - 1) // 2 : n // 2 + 1]).all() else math.inf
    lower = int(stats.binom.ppf((1 - confidence) / 2, n, 0.5))  # 1-based rank of the low end
    if lower < 1:
        return median, -math.inf, math.inf
    return median, float(x[lower - 1]), float(x[n - lower])
