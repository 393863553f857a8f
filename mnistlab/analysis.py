"""Pure functions from tidy frames to statistics. No I/O, no MLflow, no plotting.

Frames:
- runs:    one row per run, columns run_id, arm, seed (+ anything else, kept as is).
- history: one row per (run, metric, step), columns run_id, key, step, value.

The unit of evidence is the run (seed), never the step. Arms are compared paired by seed.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from mnistlab import metrics
from mnistlab.measures import HIGHER, Measure

ALPHA = 0.05
WARMUP_FRACTION = 0.1
FINAL_FRACTION = 0.1  # final_train_loss: the mean over this last fraction of the steps
TREND_WINDOW = 51  # steps in the rolling median that stands for the loss trend
RAW_SD_WINDOW = 50  # steps in the paper-style rolling standard deviation

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"


def min_seeds_for_verdict(family_size: int, alpha: float = ALPHA) -> int:
    """Fewest paired seeds at which any verdict is possible.

    An exact two-sided sign-flip test on n pairs cannot go below 2 / 2**n, and Holm multiplies
    the smallest of m p-values by m: a verdict needs 2 / 2**n * m < alpha.
    """
    n = 1
    while 2 / 2**n * max(1, family_size) >= alpha:
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
    """One row per run: every measure of the catalogue (mnistlab.measures) as a column.

    Columns added to runs: steps_to_{t}, seconds_to_{t} and reached_{t} per threshold,
    epoch_train_seconds (mean over epochs), seconds_per_step, log_loss_spread, raw_loss_sd,
    test_accuracy and test_loss (after the last epoch), final_train_loss.
    """
    table = runs.copy().set_index("run_id")
    evals = metric_series(history, metrics.EVAL_ACCURACY)
    reach = steps_to_threshold(evals, thresholds)
    # Seconds to a threshold: the cumulative train seconds logged at the step it was reached.
    seconds = metric_series(history, metrics.TRAIN_SECONDS).rename(columns={"value": "seconds"})
    reach = reach.merge(
        seconds, left_on=["run_id", "steps"], right_on=["run_id", "step"], how="left"
    )
    for threshold, group in reach.groupby("threshold"):
        by_run = group.set_index("run_id")
        table[f"steps_to_{threshold:g}"] = by_run["steps"]
        table[f"seconds_to_{threshold:g}"] = by_run["seconds"]
        table[f"reached_{threshold:g}"] = by_run["reached"]
    epoch_seconds = metric_series(history, metrics.EPOCH_TRAIN_SECONDS).groupby("run_id")["value"]
    table["epoch_train_seconds"] = epoch_seconds.mean()
    losses = metric_series(history, metrics.TRAIN_LOSS).groupby("run_id")["value"]
    table["seconds_per_step"] = epoch_seconds.sum() / losses.count()
    fluctuation = losses.apply(lambda v: loss_fluctuation(v.to_numpy()))
    table["log_loss_spread"] = fluctuation.map(lambda pair: pair[0])
    table["raw_loss_sd"] = fluctuation.map(lambda pair: pair[1])
    table["final_train_loss"] = losses.apply(
        lambda v: float(v.iloc[-max(1, math.ceil(len(v) * FINAL_FRACTION)) :].mean())
    )
    for key in (metrics.TEST_ACCURACY, metrics.TEST_LOSS):
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


def paired_test(differences: np.ndarray, seed: int = 0) -> PairedTest:
    """Bootstrap 95% interval (BCa) and an exact two-sided sign-flip permutation test.

    differences: shape (n,). Exact for n <= 16 (all 2**n sign patterns), else 100,000
    seeded random flips. Fewer than 2 pairs give NaN interval and p-value.
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
        return PairedTest(n, mean, mean, mean, min(1.0, p_value), effect)
    rng = np.random.default_rng(seed)
    test = stats.permutation_test(
        (d,),
        np.mean,
        permutation_type="samples",
        alternative="two-sided",
        n_resamples=np.inf if n <= 16 else 100_000,
        random_state=rng,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa warns on degenerate resamples; fall back below
        interval = stats.bootstrap(
            (d,), np.mean, confidence_level=0.95, method="BCa", random_state=rng
        ).confidence_interval
    low, high = float(interval.low), float(interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        interval = stats.bootstrap(
            (d,), np.mean, confidence_level=0.95, method="percentile", random_state=rng
        ).confidence_interval
        low, high = float(interval.low), float(interval.high)
    return PairedTest(n, mean, low, high, float(test.pvalue), effect)


def paired_differences(pairs: pd.DataFrame, log_scale: bool) -> np.ndarray:
    """variant - baseline per seed; log(variant) - log(baseline) for log-scale measures."""
    base, var = pairs["baseline"].to_numpy(float), pairs["variant"].to_numpy(float)
    return np.log(var) - np.log(base) if log_scale else var - base


def compare_arms(
    table: pd.DataFrame,
    baseline: str,
    variants: list[str],
    claims: list[tuple[Measure, str]],
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Verdict per (variant, claim) against the baseline, paired by seed.

    claims: (measure, direction) pairs, direction "higher" or "lower" for each variant.
    Holm's correction runs over the whole family (every variant x every claim), and no
    verdict is given below min_seeds_for_verdict(family size) paired seeds.
    Returns one row per (variant, claim): variant, baseline, claim, statement, metric, n,
    baseline_mean, variant_mean, estimate_kind, estimate (difference, or ratio for log-scale
    measures), ci_low, ci_high, p_value, p_holm, effect_size, verdict, note.
    """
    rows = []
    for variant in variants:
        for measure, direction in claims:
            pairs = paired_values(table, measure.column, baseline, variant)
            test = paired_test(paired_differences(pairs, measure.log_scale))
            to_scale = np.exp if measure.log_scale else (lambda x: x)
            rows.append(
                {
                    "variant": variant,
                    "baseline": baseline,
                    "claim": measure.name,
                    "statement": f"{variant} {measure.statement(direction)} than {baseline}",
                    "metric": measure.column,
                    "n": test.n,
                    "baseline_mean": float(pairs["baseline"].mean()) if test.n else math.nan,
                    "variant_mean": float(pairs["variant"].mean()) if test.n else math.nan,
                    "estimate_kind": "ratio" if measure.log_scale else "difference",
                    "estimate": float(to_scale(test.mean_difference)),
                    "ci_low": float(to_scale(test.ci_low)),
                    "ci_high": float(to_scale(test.ci_high)),
                    "p_value": test.p_value,
                    "effect_size": test.effect_size,
                    "direction": 1 if direction == HIGHER else -1,
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    testable = frame["p_value"].notna()
    frame["p_holm"] = math.nan
    if testable.any():
        frame.loc[testable, "p_holm"] = multipletests(
            frame.loc[testable, "p_value"], alpha=alpha, method="holm"
        )[1]
    min_seeds = min_seeds_for_verdict(len(frame), alpha)
    verdicts = [verdict(row, alpha, min_seeds, len(frame)) for row in frame.itertuples()]
    frame["verdict"] = [v for v, _ in verdicts]
    frame["note"] = [note for _, note in verdicts]
    return frame.drop(columns="direction")


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


def verdict(row, alpha: float, min_seeds: int, family_size: int) -> tuple[str, str]:  # noqa: ANN001 - a DataFrame row
    """Supported or contradicted when the Holm-corrected p < alpha, else inconclusive."""
    if row.n < min_seeds:
        return INCONCLUSIVE, (
            f"only {row.n} paired seed(s): with {family_size} test(s) under Holm, an exact "
            f"paired test needs at least {min_seeds} to reach a verdict at {alpha}"
        )
    if not row.p_holm < alpha:
        return INCONCLUSIVE, f"Holm-corrected p = {row.p_holm:.3g} is not below {alpha}"
    agrees = np.sign(row.estimate - (1.0 if row.estimate_kind == "ratio" else 0.0))
    if agrees == row.direction:
        return SUPPORTED, "the difference goes the way the claim says"
    return CONTRADICTED, "the difference is significant but opposite to the claim"


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
