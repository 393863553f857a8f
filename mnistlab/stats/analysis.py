"""Paired evidence per claim: each variant against the baseline, paired by seed.

Works on the per-run table (results.features.per_run_table: one row per run, columns arm,
seed and one per measure). The unit of evidence is the run (seed), never the step. No I/O,
no MLflow, no plotting; the verdicts are decided in stats.decisions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from mnistlab import names
from mnistlab.spec.measures import HIGHER, LOWER, SAME, Measure
from mnistlab.stats.censored import (
    censored_bounds,
    censored_median,
    censored_sign_test,
    censored_signs,
)
from mnistlab.stats.signflip import STUDY_PATTERNS, sign_flip_interval, sign_flip_p


def paired_values(table: pd.DataFrame, column: str, baseline: str, variant: str) -> pd.DataFrame:
    """Seeds run by both arms with a value for both: columns seed, baseline, variant."""
    wide = table.pivot_table(index="seed", columns="arm", values=column, aggfunc="last")
    if baseline not in wide or variant not in wide:
        return pd.DataFrame(columns=["seed", "baseline", "variant"])
    pairs = wide[[baseline, variant]].dropna()
    pairs.columns = ["baseline", "variant"]
    return pairs.reset_index().sort_values("seed", ignore_index=True)


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison: differences d_i = f(variant_i) - f(baseline_i) over n seeds."""

    n: int
    mean_difference: float
    ci_low: float
    ci_high: float
    p_value: float
    effect_size: float  # Cohen's d_z: mean difference / SD of differences
    interval_note: str = ""  # why there is no interval, when there is none


def all_equal_note(n: int) -> str:
    """What is known instead of a zero-width interval when every difference is the same."""
    return f"all {n} seeds equal: no spread to form an interval from"


def paired_test(differences: np.ndarray, seed: int = 0, confidence: float = 0.95) -> PairedTest:
    """An exact two-sided sign-flip test and the interval that inverts it (95% by default).

    differences: shape (n,). Exact for n <= 16 (all 2**n sign patterns), else 100,000
    seeded random sign patterns (signflip.sign_flip_p). The interval is the set of shifts the
    test does not reject at 1 - confidence (signflip.sign_flip_interval), so it excludes 0
    exactly when p < 1 - confidence; the mean, the estimate, is where that test is centred.
    Fewer than 2 pairs give NaN interval and p-value; when every difference is equal there is
    no interval (NaN, with interval_note), since [x, x] would claim a certainty no n gives.
    seed: unused, kept for callers of the former bootstrap interval.
    """
    d = np.asarray(differences, dtype=np.float64)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return PairedTest(n, mean, math.nan, math.nan, math.nan, math.nan)
    sd = float(d.std(ddof=1))
    effect = mean / sd if sd > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    if sd == 0:
        p_value = 1.0 if mean == 0 else 2.0 / 2**n  # every sign pattern but two is less extreme
        return PairedTest(n, mean, math.nan, math.nan, min(1.0, p_value), effect, all_equal_note(n))
    # scipy.stats.permutation_test gives the same p-value (tested) but takes a second per test
    # at a few hundred pairs; the vectorised one takes milliseconds.
    p_value = float(sign_flip_p(d, random_patterns=STUDY_PATTERNS)[0])
    low, high = sign_flip_interval(d, confidence, random_patterns=STUDY_PATTERNS)
    return PairedTest(n, mean, low, high, p_value, effect)


def paired_differences(pairs: pd.DataFrame, log_scale: bool) -> np.ndarray:
    """variant - baseline per seed; log(variant) - log(baseline) for log-scale measures."""
    base, var = pairs["baseline"].to_numpy(float), pairs["variant"].to_numpy(float)
    return np.log(var) - np.log(base) if log_scale else var - base


class ClaimLike(Protocol):
    """What a test needs of a claim (config.Claim): its measure, direction and margin."""

    direction: str
    margin: float | None

    @property
    def measure(self) -> Measure: ...


MAGNITUDES = ((0.2, "negligible"), (0.5, "small"), (0.8, "medium"), (math.inf, "large"))


def magnitude(effect_size: float) -> str:
    """Cohen's conventional word for |d_z|: negligible < 0.2 <= small < 0.5 <= medium < 0.8."""
    if not math.isfinite(effect_size):
        return "large" if not math.isnan(effect_size) else ""
    return next(word for bound, word in MAGNITUDES if abs(effect_size) < bound)


@dataclass(frozen=True)
class Beats:
    """On how many seeds the claim held: strict wins, ties, unknown (censored) and the share
    of seeds with its 95% Wilson interval (bounds, when some signs are unknown)."""

    wins: int
    ties: int
    unknown: int
    n: int
    share: float  # wins / n: what happened, never a tie counted as half a win
    low: float
    high: float

    def words(self) -> str:
        """'8 of 10 seeds, 2 tied', 'at least 7 of 10 seeds (2 censored, sign unknown)'."""
        text = f"{'at least ' if self.unknown else ''}{self.wins} of {self.n} seeds"
        extra = [f"{self.ties} tied"] if self.ties else []
        if self.unknown:
            extra.append(f"{self.unknown} censored, sign unknown")
        return text + (f" ({', '.join(extra)})" if extra else "")


def probability_of_beating(signs: np.ndarray, direction: int) -> Beats:
    """On how many seeds the claim holds, from the per-seed signs (or differences).

    A seed counts when its difference goes the claimed way (direction +1: higher); a tie is
    a tie, not half a win, and a NaN (a censored pair whose sign the bound does not decide)
    is unknown. The share is wins / n with its 95% Wilson score interval; with unknowns, the
    interval runs from Wilson's low end for the wins alone to its high end had every unknown
    been a win. Wilson rather than a bootstrap: when every seed agrees, a bootstrap of the
    share collapses to [1, 1], which no finite number of seeds can justify.
    """
    s = np.sign(np.asarray(signs, dtype=np.float64))
    n = len(s)
    if n == 0:
        return Beats(0, 0, 0, 0, math.nan, math.nan, math.nan)
    unknown = int(np.isnan(s).sum())
    wins = int((s == direction).sum())
    ties = int((s == 0).sum())
    low, _ = proportion_confint(wins, n, alpha=0.05, method="wilson")
    _, high = proportion_confint(wins + unknown, n, alpha=0.05, method="wilson")
    return Beats(wins, ties, unknown, n, wins / n, float(low), float(high))


def equivalence_test(differences: np.ndarray, margin: float) -> float:
    """p of two one-sided sign-flip tests (TOST) that the mean lies inside (-margin, margin)."""
    return max(tost(differences, margin))


def tost(differences: np.ndarray, margin: float) -> tuple[float, float]:
    """The two one-sided sign-flip p-values: (mean > -margin, mean < +margin); NaN below 2."""
    d = np.asarray(differences, dtype=np.float64)
    if len(d) < 2:
        return math.nan, math.nan
    # As many patterns as the difference test (exact up to 16 pairs): one test, one precision.
    p_above_lower = sign_flip_p(d + margin, "greater", random_patterns=STUDY_PATTERNS)[0]
    p_below_upper = sign_flip_p(d - margin, "less", random_patterns=STUDY_PATTERNS)[0]
    return float(p_above_lower), float(p_below_upper)


def margin_words(measure: Measure, margin: float | None) -> str:
    """A margin in words for a claim's statement: '±5', '±0.3 points', '±5% (ratio 1.05)'."""
    if margin is None:
        return ""
    if measure.log_scale:
        return f"±{100 * (margin - 1):.3g}% (ratio {margin:g})"
    if measure.column == names.TEST_ACCURACY:
        return f"±{100 * margin:.3g} points"
    return f"±{margin:g}"


def margin_on_test_scale(measure: Measure, margin: float) -> float:
    """A ratio margin (e.g. 1.05) as a log ratio; a difference margin as it is."""
    return math.log(margin) if measure.log_scale else margin


def paired_evidence(
    table: pd.DataFrame,
    baseline: str,
    variants: list[str],
    claims: list[ClaimLike],
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per (variant, claim) paired statistics against the baseline, before any decision.

    Returns one row per (variant, claim): variant, baseline, claim, statement, metric, n,
    baseline_mean, variant_mean, estimate_kind, estimate (mean difference, or the ratio of
    geometric means for log-scale measures: where the test is centred), ci_low, ci_high (the
    inverted sign-flip test at `confidence`, the level the decision uses) with confidence and
    interval_note, p_value, effect_size (d_z), magnitude, p_beats with p_beats_low/high and
    wins, ties, unknown_signs, beats_words, informative (pairs that can move the test: not
    tied), censored_pairs, test, margin, p_equivalence, ci90_low/high (the interval TOST
    inverts, at equivalence_confidence = 1 - 2 (1 - confidence)), direction (+1 claimed
    higher, -1 lower) and evidence (the way the data point: +1, -1 or 0).

    With censored pairs there is no mean: estimate and d_z are NaN, median_low/median_high
    bound the median per-seed difference (ratio), and ci_low/ci_high are the order-statistic
    interval of that median widened to the censoring bounds (inf: open).
    """
    return pd.DataFrame(
        [
            _claim_row(table, baseline, variant, claim, confidence)
            for variant in variants
            for claim in claims
        ]
    )


def _reached_flags(
    table: pd.DataFrame, measure: Measure, baseline: str, variant: str, pairs: pd.DataFrame
) -> pd.DataFrame | None:
    """Both arms' reached flags on the seeds of `pairs`; None when the measure has no column."""
    reached_column = (
        names.threshold_column(names.REACHED, measure.threshold) if measure.threshold else ""
    )
    if reached_column not in table:
        return None
    # On the seeds that have both values: contended runs' times are blanked, their reached
    # flags are not.
    return (
        paired_values(table, reached_column, baseline, variant)
        .set_index("seed")
        .reindex(pairs["seed"])
        .reset_index()
        .astype({"baseline": bool, "variant": bool})
    )


def _censored_test(
    test: PairedTest,
    d: np.ndarray,
    reached: pd.DataFrame,
    censored: int,
    p_value: float,
    measure: Measure,
    confidence: float,
) -> tuple[list[float], PairedTest]:
    """The median's bounds, and the test with the sign test's p and the median's interval."""
    *median_bounds, low, high = censored_median(*censored_bounds(d, reached), confidence)
    test = dataclasses.replace(
        test,
        p_value=p_value,
        mean_difference=math.nan,
        effect_size=math.nan,
        ci_low=low,
        ci_high=high,
        interval_note=(
            f"{censored} of {test.n} pairs censored: no mean; the median per-seed "
            f"{'ratio' if measure.log_scale else 'difference'} and its "
            "order-statistic interval, widened to what the censored runs allow"
        ),
    )
    return median_bounds, test


def _beats_columns(signs: np.ndarray, direction: int) -> dict[str, Any]:
    """The probability of beating the baseline and the sign counts behind it."""
    beats = probability_of_beating(signs, direction) if direction else None
    return {
        "p_beats": beats.share if beats else math.nan,
        "p_beats_low": beats.low if beats else math.nan,
        "p_beats_high": beats.high if beats else math.nan,
        "wins": beats.wins if beats else 0,
        "ties": int((signs == 0).sum()),
        "unknown_signs": int(np.isnan(signs).sum()),
        "beats_words": beats.words() if beats else "",
        "informative": int(np.count_nonzero(signs[~np.isnan(signs)]) + np.isnan(signs).sum()),
    }


def _equivalence_columns(
    d: np.ndarray, claim: ClaimLike, censored: int, confidence: float
) -> dict[str, Any]:
    """TOST against the claim's margin and the interval it inverts; NaN without a margin."""
    measure, margin = claim.measure, claim.margin
    to_scale = np.exp if measure.log_scale else (lambda x: x)
    equivalence_confidence = 1 - 2 * (1 - confidence)
    tost_p, ci90 = (math.nan, math.nan), (math.nan, math.nan)
    if margin is not None and not censored:
        tost_p = tost(d, margin_on_test_scale(measure, margin))
        ci90 = sign_flip_interval(d, equivalence_confidence, random_patterns=STUDY_PATTERNS)
    return {
        "p_equivalence": max(tost_p),
        "p_tost_lower": tost_p[0],
        "p_tost_upper": tost_p[1],
        "ci90_low": float(to_scale(ci90[0])),
        "ci90_high": float(to_scale(ci90[1])),
        "equivalence_confidence": equivalence_confidence,
    }


def _claim_row(
    table: pd.DataFrame, baseline: str, variant: str, claim: ClaimLike, confidence: float
) -> dict[str, Any]:
    """One row of paired_evidence: one variant against the baseline on one claim."""
    measure = claim.measure
    # +1 claimed higher, -1 lower, 0 a two-sided or equivalence question.
    direction = {HIGHER: 1, LOWER: -1}.get(claim.direction, 0)
    pairs = paired_values(table, measure.column, baseline, variant)
    d = paired_differences(pairs, measure.log_scale)
    test = paired_test(d, confidence=confidence)
    to_scale = np.exp if measure.log_scale else (lambda x: x)
    evidence = int(np.sign(test.mean_difference)) if test.n else 0
    kind, censored = "exact sign-flip", 0
    signs = np.sign(d)
    median_bounds = [math.nan, math.nan]
    reached = _reached_flags(table, measure, baseline, variant, pairs)
    if reached is not None:
        censored = int((~reached["baseline"] | ~reached["variant"]).sum())
        if censored:
            signs = censored_signs(pairs, reached)
            p_value, evidence = censored_sign_test(signs, direction or 1)
            median_bounds, test = _censored_test(
                test, d, reached, censored, p_value, measure, confidence
            )
            kind = "exact sign test (censored pairs)"
    if claim.direction == SAME:
        test = dataclasses.replace(test, p_value=math.nan)  # its only test is the TOST
    return {
        "variant": variant,
        "baseline": baseline,
        "claim": measure.name,
        "statement": measure.claim(
            claim.direction, variant, baseline, margin_words(measure, claim.margin)
        ),
        "metric": measure.column,
        "n": test.n,
        "baseline_mean": float(pairs["baseline"].mean()) if test.n else math.nan,
        "variant_mean": float(pairs["variant"].mean()) if test.n else math.nan,
        "estimate_kind": "ratio" if measure.log_scale else "difference",
        "estimate": float(to_scale(test.mean_difference)),
        "ci_low": float(to_scale(test.ci_low)),
        "ci_high": float(to_scale(test.ci_high)),
        "confidence": confidence,
        "interval_note": test.interval_note,
        "median_low": float(to_scale(median_bounds[0])),
        "median_high": float(to_scale(median_bounds[1])),
        "p_value": test.p_value,
        "effect_size": test.effect_size,
        "magnitude": magnitude(test.effect_size),
        **_beats_columns(signs, direction),
        "censored_pairs": censored,
        "test": kind,
        "margin": math.nan if claim.margin is None else claim.margin,
        **_equivalence_columns(d, claim, censored, confidence),
        "direction": direction,
        "question": claim.direction,
        "evidence": evidence,
    }


SECONDARY_MEASURES = {
    names.TEST_ACCURACY: "final full-test accuracy",
    names.RAW_LOSS_SD: "raw rolling SD of the train loss (the paper's informal notion)",
    names.SECONDS_PER_STEP: "train seconds per step",
}


def secondary_comparisons(
    table: pd.DataFrame, baseline: str, variant: str, measures: dict[str, str]
) -> pd.DataFrame:
    """Paired differences (variant - baseline) of other measures: descriptive, uncorrected.

    Returns one row per measure: measure, description, n, baseline_mean, variant_mean,
    difference, ci_low, ci_high, p_value.
    """
    rows = []
    for column, description in measures.items():
        if column not in table:
            continue
        pairs = paired_values(table, column, baseline, variant)
        test = paired_test(pairs["variant"].to_numpy(float) - pairs["baseline"].to_numpy(float))
        rows.append(
            {
                "measure": column,
                "description": description,
                "n": test.n,
                "baseline_mean": float(pairs["baseline"].mean()) if test.n else math.nan,
                "variant_mean": float(pairs["variant"].mean()) if test.n else math.nan,
                "difference": test.mean_difference,
                "ci_low": test.ci_low,
                "ci_high": test.ci_high,
                "p_value": test.p_value,
            }
        )
    return pd.DataFrame(rows)
