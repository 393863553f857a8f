"""Accuracy at an equal wall-clock budget: the paper's question is about cost, so the arms are
also compared at the same training seconds, not only after the same number of steps."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mnistlab import names
from mnistlab.results.features import metric_series
from mnistlab.stats.analysis import paired_test

COLUMNS = [
    "variant",
    "baseline",
    "n",
    "budget_seconds",
    "baseline_mean",
    "variant_mean",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "higher",
    "lower",
    "tied",
]


def accuracy_by_seconds(history: pd.DataFrame) -> pd.DataFrame:
    """Per run and evaluation: run_id, seconds (cumulative train-only), accuracy (eval subset)."""
    evals = metric_series(history, names.EVAL_ACCURACY).rename(columns={"value": "accuracy"})
    seconds = metric_series(history, names.TRAIN_SECONDS).rename(columns={"value": "seconds"})
    both = evals.merge(seconds, on=["run_id", "step"])[["run_id", "step", "seconds", "accuracy"]]
    return both.sort_values(["run_id", "step"], ignore_index=True)


def at_budget(curve: pd.DataFrame, budget: float) -> float:
    """The accuracy of the last evaluation whose train seconds are within the budget (NaN if
    none is): what the run had reached when the budget ran out."""
    within = curve[curve["seconds"] <= budget]
    return float(within["accuracy"].iloc[-1]) if not within.empty else math.nan


def equal_budget(
    table: pd.DataFrame, history: pd.DataFrame, baseline: str, variants: list[str]
) -> pd.DataFrame:
    """Per variant: evaluation accuracy, paired by seed, when both runs of a seed have trained
    for as many seconds as the quicker of the two took in all.

    table: the run table (analysis.per_run_table) with run_id, arm, seed and contended; a
    contended run's seconds measure the sharing, so its seed is left out. Returns COLUMNS:
    budget_seconds is the median per-seed budget; difference is variant - baseline accuracy
    (a fraction), with the interval that inverts the exact sign-flip test and its p; higher,
    lower and tied count the seeds. Descriptive: outside the Holm family. Empty without a
    timed evaluation history.
    """
    curves = {run: group for run, group in accuracy_by_seconds(history).groupby("run_id")}
    alone = table[~table["contended"].astype(bool) & table["run_id"].isin(curves)]
    by_seed = {
        arm: dict(zip(group["seed"], group["run_id"], strict=True))
        for arm, group in alone.groupby("arm")
    }
    rows = []
    for variant in variants:
        pairs = []
        for seed in sorted(set(by_seed.get(baseline, {})) & set(by_seed.get(variant, {}))):
            base, var = curves[by_seed[baseline][seed]], curves[by_seed[variant][seed]]
            budget = min(base["seconds"].max(), var["seconds"].max())
            pairs.append((budget, at_budget(base, budget), at_budget(var, budget)))
        pairs = [p for p in pairs if not (math.isnan(p[1]) or math.isnan(p[2]))]
        if not pairs:
            continue
        budget, base_acc, var_acc = (np.array(column) for column in zip(*pairs, strict=True))
        test = paired_test(var_acc - base_acc)
        rows.append(
            {
                "variant": variant,
                "baseline": baseline,
                "n": test.n,
                "budget_seconds": float(np.median(budget)),
                "baseline_mean": float(base_acc.mean()),
                "variant_mean": float(var_acc.mean()),
                "difference": test.mean_difference,
                "ci_low": test.ci_low,
                "ci_high": test.ci_high,
                "p_value": test.p_value,
                "higher": int((var_acc > base_acc).sum()),
                "lower": int((var_acc < base_acc).sum()),
                "tied": int((var_acc == base_acc).sum()),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
