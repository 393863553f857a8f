"""Pure functions from tidy frames to statistics. No I/O, no MLflow, no plotting.

Frames:
- runs:    one row per run, columns run_id, arm, seed (+ anything else, kept as is).
- history: one row per (run, metric, step), columns run_id, key, step, value.

The unit of evidence is the run (seed), never the step. Arms are compared paired by seed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from mnistlab import names
from mnistlab.spec.measures import EITHER, HIGHER, LOWER, SAME, Measure
from mnistlab.stats.signflip import (
    STUDY_PATTERNS,
    can_decide,
    sign_flip_interval,
    sign_flip_p,
    sign_test_p,
    smallest_p_words,
)
from mnistlab.stats.verdicts import Verdict
from mnistlab.training.divergence import final_loss

ALPHA = 0.05
WARMUP_FRACTION = 0.1
TREND_WINDOW = 51  # steps in the rolling median that stands for the loss trend
RAW_SD_WINDOW = 50  # steps in the paper-style rolling standard deviation

SUPPORTED, CONTRADICTED, INCONCLUSIVE = (
    Verdict.SUPPORTED,
    Verdict.CONTRADICTED,
    Verdict.INCONCLUSIVE,
)
EQUIVALENT = Verdict.EQUIVALENT


def min_seeds_for_verdict(family_size: int, alpha: float = ALPHA) -> int:
    """Fewest paired seeds at which any verdict is possible.

    An exact two-sided sign-flip test on n pairs cannot go below 2 / 2**n, and Holm multiplies
    the smallest of m p-values by m: a verdict needs 2 / 2**n * m < alpha.
    """
    if alpha <= 0:
        raise ValueError(f"no number of seeds reaches a verdict at alpha = {alpha}")
    n = 1
    while not can_decide(n, family_size, alpha):
        n += 1
    return n


def metric_series(history: pd.DataFrame, key: str) -> pd.DataFrame:
    """Rows of one metric: columns run_id, step, value, sorted by run and step."""
    rows = history[history["key"] == key]
    return rows[["run_id", "step", "value"]].sort_values(["run_id", "step"], ignore_index=True)


def steps_to_threshold(evals: pd.DataFrame, thresholds: list[float]) -> pd.DataFrame:
    """First evaluation step at which accuracy >= threshold, per run and threshold.

    evals: columns run_id, step, value (accuracy). Returns one row per (run_id, threshold)
    with columns steps and reached; a run that never reaches it is censored at its last
    evaluated step (reached=False), never dropped.
    """
    rows = []
    for run_id, run in evals.groupby("run_id", sort=True):
        run = run.sort_values("step")
        for threshold in thresholds:
            hits = run.loc[run["value"] >= threshold, "step"]
            reached = not hits.empty
            steps = int(hits.iloc[0]) if reached else int(run["step"].iloc[-1])
            rows.append(
                {"run_id": run_id, "threshold": threshold, "steps": steps, "reached": reached}
            )
    return pd.DataFrame(rows, columns=["run_id", "threshold", "steps", "reached"])


def fraction_reached(reach: pd.DataFrame, runs: pd.DataFrame, steps: np.ndarray) -> pd.DataFrame:
    """Fraction of each arm's runs that have reached each threshold by each step.

    reach: steps_to_threshold output. Returns columns arm, threshold, step, fraction.
    """
    merged = reach.merge(runs[["run_id", "arm"]], on="run_id")
    rows = []
    for (arm, threshold), group in merged.groupby(["arm", "threshold"], sort=True):
        hit_steps = group.loc[group["reached"], "steps"].to_numpy()
        n = len(group)
        for step in steps:
            rows.append(
                {
                    "arm": arm,
                    "threshold": threshold,
                    "step": int(step),
                    "fraction": float((hit_steps <= step).sum() / n),
                }
            )
    return pd.DataFrame(rows)


def trend_window(n_steps: int) -> int:
    """The rolling-median window: TREND_WINDOW, or an odd quarter of a short history."""
    return int(min(TREND_WINDOW, max(5, (n_steps // 4) | 1)))


def loss_fluctuation(losses: np.ndarray) -> tuple[float, float]:
    """(log_spread, raw_rolling_sd) of one run's train loss, shape (steps,).

    log_spread: standard deviation of log(loss) around its rolling median, after a warm-up;
    it measures noise, not the downward trend. raw_rolling_sd: the mean rolling standard
    deviation of the loss itself after the warm-up, the paper's informal notion.
    """
    losses = np.asarray(losses, dtype=np.float64)
    start = max(1, int(len(losses) * WARMUP_FRACTION))
    log_loss = pd.Series(np.log(np.maximum(losses, 1e-12)))
    trend = log_loss.rolling(trend_window(len(losses)), center=True).median()
    residual = (log_loss - trend).iloc[start:].dropna()
    raw_window = min(RAW_SD_WINDOW, max(2, len(losses) // 4))
    raw = pd.Series(losses).rolling(raw_window).std().iloc[start:].dropna()
    log_spread = float(residual.std(ddof=1)) if len(residual) > 1 else math.nan
    return log_spread, float(raw.mean()) if len(raw) else math.nan


def per_run_table(
    runs: pd.DataFrame, history: pd.DataFrame, thresholds: list[float]
) -> pd.DataFrame:
    """One row per run: every measure of the catalogue (mnistlab.spec.measures) as a column.

    Columns added to runs: steps_to_{t}, seconds_to_{t} and reached_{t} per threshold,
    epoch_train_seconds (mean over epochs), seconds_per_step, log_loss_spread, raw_loss_sd,
    test_accuracy and test_loss (after the last epoch), final_train_loss.
    """
    table = runs.copy().set_index("run_id")
    evals = metric_series(history, names.EVAL_ACCURACY)
    reach = steps_to_threshold(evals, thresholds)
    # Seconds to a threshold: the cumulative train seconds logged at the step it was reached.
    seconds = metric_series(history, names.TRAIN_SECONDS).rename(columns={"value": "seconds"})
    reach = reach.merge(
        seconds, left_on=["run_id", "steps"], right_on=["run_id", "step"], how="left"
    )
    for threshold, group in reach.groupby("threshold"):
        by_run = group.set_index("run_id")
        table[f"steps_to_{threshold:g}"] = by_run["steps"]
        table[f"seconds_to_{threshold:g}"] = by_run["seconds"]
        table[f"reached_{threshold:g}"] = by_run["reached"]
    epoch_seconds = metric_series(history, names.EPOCH_TRAIN_SECONDS).groupby("run_id")["value"]
    table["epoch_train_seconds"] = epoch_seconds.mean()
    losses = metric_series(history, names.TRAIN_LOSS).groupby("run_id")["value"]
    table["seconds_per_step"] = epoch_seconds.sum() / losses.count()
    fluctuation = losses.apply(lambda v: loss_fluctuation(v.to_numpy()))
    table["log_loss_spread"] = fluctuation.map(lambda pair: pair[0])
    table["raw_loss_sd"] = fluctuation.map(lambda pair: pair[1])
    table["final_train_loss"] = losses.apply(lambda v: final_loss(v.to_numpy()))
    for key in (names.TEST_ACCURACY, names.TEST_LOSS):
        table[key] = metric_series(history, key).groupby("run_id")["value"].last()
    return table.reset_index()


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
    if measure.column == "test_accuracy":
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
    alpha = 1 - confidence
    rows = []
    for variant in variants:
        for claim in claims:
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
            median_bounds = (math.nan, math.nan)
            reached_column = f"reached_{measure.threshold:g}" if measure.threshold else ""
            if reached_column in table:
                # On the seeds that have both values: contended runs' times are blanked, their
                # reached flags are not.
                reached = (
                    paired_values(table, reached_column, baseline, variant)
                    .set_index("seed")
                    .reindex(pairs["seed"])
                    .reset_index()
                    .astype({"baseline": bool, "variant": bool})
                )
                censored = int((~reached["baseline"] | ~reached["variant"]).sum())
                if censored:
                    signs = censored_signs(pairs, reached)
                    p_value, evidence = censored_sign_test(signs, direction or 1)
                    *median_bounds, low, high = censored_median(
                        *censored_bounds(d, reached), confidence
                    )
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
                    kind = "exact sign test (censored pairs)"
            informative = int(np.count_nonzero(signs[~np.isnan(signs)]) + np.isnan(signs).sum())
            margin = claim.margin
            tost_p, ci90 = (math.nan, math.nan), (math.nan, math.nan)
            if margin is not None and not censored:
                tost_p = tost(d, margin_on_test_scale(measure, margin))
                ci90 = sign_flip_interval(d, 1 - 2 * alpha, random_patterns=STUDY_PATTERNS)
            p_equivalence = max(tost_p)
            if claim.direction == SAME:
                test = dataclasses.replace(test, p_value=math.nan)  # its only test is the TOST
            beats = probability_of_beating(signs, direction) if direction else None
            rows.append(
                {
                    "variant": variant,
                    "baseline": baseline,
                    "claim": measure.name,
                    "statement": measure.claim(
                        claim.direction, variant, baseline, margin_words(measure, margin)
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
                    "p_beats": beats.share if beats else math.nan,
                    "p_beats_low": beats.low if beats else math.nan,
                    "p_beats_high": beats.high if beats else math.nan,
                    "wins": beats.wins if beats else 0,
                    "ties": int((signs == 0).sum()),
                    "unknown_signs": int(np.isnan(signs).sum()),
                    "beats_words": beats.words() if beats else "",
                    "informative": informative,
                    "censored_pairs": censored,
                    "test": kind,
                    "margin": math.nan if margin is None else margin,
                    "p_equivalence": p_equivalence,
                    "p_tost_lower": tost_p[0],
                    "p_tost_upper": tost_p[1],
                    "ci90_low": float(to_scale(ci90[0])),
                    "ci90_high": float(to_scale(ci90[1])),
                    "equivalence_confidence": 1 - 2 * alpha,
                    "direction": direction,
                    "question": claim.direction,
                    "evidence": evidence,
                }
            )
    return pd.DataFrame(rows)


def holm_rows(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values of each row of p (rows, tests): sort, scale by (m - rank),
    running maximum, cap at 1. Written out because statsmodels' multipletests runs a full
    garbage collection per call (60 ms), too slow inside thousands of simulated studies;
    tests check it against multipletests."""
    order = np.argsort(p, axis=1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=1)
    scale = p.shape[1] - np.arange(p.shape[1])
    adjusted_ranked = np.minimum(1.0, np.maximum.accumulate(ranked * scale, axis=1))
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, adjusted_ranked, axis=1)
    return adjusted


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values over the family, NaN (no test) left as NaN and not counted."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full_like(p, math.nan)
    testable = ~np.isnan(p)
    if testable.any():
        adjusted[testable] = holm_rows(p[testable][None, :])[0]
    return adjusted


def hypotheses(frame: pd.DataFrame) -> int:
    """Tests in the family: every difference test, plus an equivalence test per margin."""
    return int(frame["p_value"].notna().sum() + frame["p_equivalence"].notna().sum()) or len(frame)


def decide(frame: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Holm over every hypothesis in the frame together, then a verdict per row."""
    frame = frame.copy()
    if frame.empty:
        return frame
    both = holm(np.concatenate([frame["p_value"], frame["p_equivalence"]]))
    frame["p_holm"], frame["p_equivalence_holm"] = both[: len(frame)], both[len(frame) :]
    family = max(len(frame), hypotheses(frame))
    min_seeds = min_seeds_for_verdict(family, alpha)
    verdicts = [verdict(row, alpha, min_seeds, family) for row in frame.itertuples()]
    frame["verdict"] = [v for v, _ in verdicts]
    frame["note"] = [note for _, note in verdicts]
    return frame


def compare_arms(
    table: pd.DataFrame,
    baseline: str,
    variants: list[str],
    claims: list[ClaimLike],
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Verdict per (variant, claim) against the baseline, paired by seed.

    Holm's correction runs over the whole family (every variant x every claim, and an
    equivalence test for each claim with a margin), and no verdict is given below
    min_seeds_for_verdict(family size) paired seeds. Columns: those of paired_evidence,
    then p_holm, p_equivalence_holm, verdict and note.
    """
    return decide(paired_evidence(table, baseline, variants, claims), alpha)


SECONDARY_MEASURES = {
    "test_accuracy": "final full-test accuracy",
    "raw_loss_sd": "raw rolling SD of the train loss (the paper's informal notion)",
    "seconds_per_step": "train seconds per step",
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


OPEN = {EITHER: Verdict.NO_DIFFERENCE, SAME: Verdict.NOT_EQUIVALENT}  # else INCONCLUSIVE


def verdict(row, alpha: float, min_seeds: int, family_size: int) -> tuple[str, str]:  # noqa: ANN001 - a DataFrame row
    """The verdict as the claim's question was asked, from the Holm-corrected p-values.

    higher / lower: supported, contradicted or (with a margin) equivalent, else inconclusive.
    either: differs, else (with a margin) equivalent, else no difference shown.
    equivalent: equivalent (TOST inside the margin), else not shown equivalent.
    """
    question = getattr(row, "question", HIGHER if row.direction > 0 else LOWER)
    still_open = OPEN.get(question, INCONCLUSIVE)
    if row.n == 0:
        return still_open, "not measurable on these runs (too few steps, or never evaluated)"
    if row.n < min_seeds:
        return still_open, (
            f"only {row.n} paired seed(s): with {family_size} test(s) under Holm, an exact "
            f"paired test needs at least {min_seeds} to reach a verdict at {alpha:.3g}"
        )
    censored = (
        f"; {row.censored_pairs} of {row.n} pairs censored, each of unknown sign counted "
        "against the verdict"
        if row.censored_pairs
        else ""
    )
    within = not math.isnan(row.p_equivalence_holm) and row.p_equivalence_holm < alpha
    equivalent_note = (
        f"two one-sided tests put the difference within the margin ±{row.margin:g}"
        + (" (as a ratio)" if row.estimate_kind == "ratio" else "")
        + f", Holm-corrected p = {row.p_equivalence_holm:.3g}"
    )
    informative = int(getattr(row, "informative", row.n))
    if informative < min_seeds and not within and question != SAME:
        tied = row.n - informative
        return still_open, (
            f"{row.n} paired seeds, {tied} of them tied: ties do not move an exact test, so "
            f"{smallest_p_words(informative)}, and with {family_size} "
            f"test(s) under Holm it cannot get below {alpha:.3g}; a verdict needs "
            f"{min_seeds - informative} more untied seed(s)"
        )
    if question == SAME:
        if within:
            return EQUIVALENT, equivalent_note
        if row.censored_pairs:
            return still_open, (
                f"{row.censored_pairs} of {row.n} pairs censored: a run that never reached the "
                "threshold has no value to put inside a margin, so equivalence cannot be tested"
            )
        return still_open, (
            f"two one-sided tests do not put the difference within ±{row.margin:g}"
            + (" (as a ratio)" if row.estimate_kind == "ratio" else "")
            + f": Holm-corrected p = {row.p_equivalence_holm:.3g} is not below {alpha:.3g}"
        )
    if row.p_holm < alpha:
        if question == EITHER:
            way = "higher" if row.evidence > 0 else "lower"
            return Verdict.DIFFERS, (
                f"two-sided Holm-corrected p = {row.p_holm:.3g}; the variant's value is {way}"
                + censored
            )
        if row.evidence == row.direction:
            note = "the difference goes the way the claim says"
            if within:
                note += ", though it lies within the margin (practically equivalent)"
            return SUPPORTED, note + censored
        note = "the difference is significant but opposite to the claim"
        if within:
            note += ", though it lies within the margin (practically equivalent)"
        return CONTRADICTED, note + censored
    if within:
        return EQUIVALENT, equivalent_note
    return still_open, (f"Holm-corrected p = {row.p_holm:.3g} is not below {alpha:.3g}" + censored)


def arm_summary(table: pd.DataFrame, thresholds: list[float]) -> pd.DataFrame:
    """Per arm: n runs, mean and SD of the main per-run measures, censored counts."""
    rows = []
    for arm, group in table.groupby("arm", sort=False):
        row = {"arm": arm, "model": group["model"].iloc[0], "runs": len(group)}
        for column in (
            "test_accuracy",
            "epoch_train_seconds",
            "seconds_per_step",
            "log_loss_spread",
            "raw_loss_sd",
        ):
            row[f"{column}_mean"] = group[column].mean()
            row[f"{column}_sd"] = group[column].std(ddof=1)
        for threshold in thresholds:
            row[f"steps_to_{threshold:g}_median"] = group[f"steps_to_{threshold:g}"].median()
            row[f"censored_{threshold:g}"] = int(
                (~group[f"reached_{threshold:g}"].astype(bool)).sum()
            )
        rows.append(row)
    return pd.DataFrame(rows)


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
