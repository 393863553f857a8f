"""Features of runs' histories: one row per run with every measure a claim can name.

Frames:
- runs:    one row per run, columns run_id, arm, seed (+ anything else, kept as is).
- history: one row per (run, metric, step), columns run_id, key, step, value.

Column names come from mnistlab.names (threshold_column) and mnistlab.spec.measures; the
statistics on these columns are in mnistlab.stats.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mnistlab import names
from mnistlab.training.divergence import final_loss

WARMUP_FRACTION = 0.1


TREND_WINDOW = 51  # steps in the rolling median that stands for the loss trend


RAW_SD_WINDOW = 50  # steps in the paper-style rolling standard deviation


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
        table[names.threshold_column(names.STEPS_TO, threshold)] = by_run["steps"]
        table[names.threshold_column(names.SECONDS_TO, threshold)] = by_run["seconds"]
        table[names.threshold_column(names.REACHED, threshold)] = by_run["reached"]
    epoch_seconds = metric_series(history, names.EPOCH_TRAIN_SECONDS).groupby("run_id")["value"]
    table[names.EPOCH_TRAIN_SECONDS] = epoch_seconds.mean()
    losses = metric_series(history, names.TRAIN_LOSS).groupby("run_id")["value"]
    table[names.SECONDS_PER_STEP] = epoch_seconds.sum() / losses.count()
    fluctuation = losses.apply(lambda v: loss_fluctuation(v.to_numpy()))
    table[names.LOG_LOSS_SPREAD] = fluctuation.map(lambda pair: pair[0])
    table[names.RAW_LOSS_SD] = fluctuation.map(lambda pair: pair[1])
    table[names.FINAL_TRAIN_LOSS] = losses.apply(lambda v: final_loss(v.to_numpy()))
    for key in (names.TEST_ACCURACY, names.TEST_LOSS):
        table[key] = metric_series(history, key).groupby("run_id")["value"].last()
    return table.reset_index()


def arm_summary(table: pd.DataFrame, thresholds: list[float]) -> pd.DataFrame:
    """Per arm: n runs, mean and SD of the main per-run measures, censored counts."""
    rows = []
    for arm, group in table.groupby("arm", sort=False):
        row = {"arm": arm, "model": group["model"].iloc[0], "runs": len(group)}
        for column in (
            names.TEST_ACCURACY,
            names.EPOCH_TRAIN_SECONDS,
            names.SECONDS_PER_STEP,
            names.LOG_LOSS_SPREAD,
            names.RAW_LOSS_SD,
        ):
            row[column + names.MEAN_SUFFIX] = group[column].mean()
            row[column + names.SD_SUFFIX] = group[column].std(ddof=1)
        for threshold in thresholds:
            steps = names.threshold_column(names.STEPS_TO, threshold)
            row[steps + names.MEDIAN_SUFFIX] = group[steps].median()
            row[names.threshold_column(names.CENSORED, threshold)] = int(
                (~group[names.threshold_column(names.REACHED, threshold)].astype(bool)).sum()
            )
        rows.append(row)
    return pd.DataFrame(rows)
