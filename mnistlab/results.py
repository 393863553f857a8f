"""A study's results: its runs read back from MLflow, turned into statistics and verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from mlflow import MlflowClient

from mnistlab.analysis import (
    MIN_SEEDS_FOR_TEST,
    SECONDARY_MEASURES,
    compare_models,
    fraction_reached,
    metric_series,
    model_summary,
    paper_claims,
    per_run_table,
    secondary_comparisons,
    steps_to_threshold,
)
from mnistlab.tracking import load_study

REQUIRED_METRICS = ("train_loss", "eval_accuracy", "epoch_train_seconds", "test_accuracy")


@dataclass
class StudyResults:
    study: str
    tracking_uri: str
    spec: dict[str, Any]
    models: list[str]
    thresholds: list[float]
    primary_threshold: float
    runs: pd.DataFrame  # one row per usable run, with per-run measures
    history: pd.DataFrame  # one row per (run, metric, step)
    verdicts: pd.DataFrame  # one row per (variant, claim)
    secondary: pd.DataFrame  # one row per (variant, other measure): descriptive, uncorrected
    summary: pd.DataFrame  # one row per model
    fractions: pd.DataFrame  # fraction of seeds past each threshold by step
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (run name, reason)
    notes: list[str] = field(default_factory=list)  # why a verdict is missing, caveats

    @property
    def baseline(self) -> str:
        return self.models[0]

    @property
    def contended(self) -> bool:
        return bool(self.runs["contended"].any())


def missing_metrics(runs: pd.DataFrame, history: pd.DataFrame) -> dict[str, list[str]]:
    """Run id -> required metrics it lacks (a run logged by hand, or by older code)."""
    present = history.groupby("run_id")["key"].apply(set).to_dict()
    gaps = {}
    for run_id in runs["run_id"]:
        lacking = [k for k in REQUIRED_METRICS if k not in present.get(run_id, set())]
        if lacking:
            gaps[run_id] = lacking
    return gaps


def analyse(client: MlflowClient, study: str) -> StudyResults:
    spec, runs, history = load_study(client, study)
    models_in_spec = list(spec.get("models") or sorted(runs["model"].unique()))
    thresholds = [float(t) for t in spec.get("thresholds", [0.9, 0.95, 0.97, 0.98])]
    primary = float(spec.get("primary_threshold", thresholds[0]))
    notes: list[str] = []
    excluded = []
    gaps = missing_metrics(runs, history)
    for run_id, lacking in gaps.items():
        name = runs.loc[runs["run_id"] == run_id, "run_name"].iloc[0]
        excluded.append((name, f"missing metrics: {', '.join(lacking)}"))
    runs = runs[~runs["run_id"].isin(gaps)]
    history = history[history["run_id"].isin(runs["run_id"])]
    models = [m for m in models_in_spec if m in set(runs["model"])]
    table = per_run_table(runs, history, thresholds) if not runs.empty else runs
    verdicts, secondary = [], []
    if len(models) < 2:
        notes.append(
            f"Only {len(models)} model has usable runs ({', '.join(models) or 'none'}): there is "
            "nothing to compare, so no verdicts. Add a second model to the spec and rerun."
        )
    for variant in models[1:]:
        verdicts.append(
            compare_models(table, models[0], variant, paper_claims(primary)).assign(
                baseline=models[0], variant=variant
            )
        )
        secondary.append(
            secondary_comparisons(table, models[0], variant, SECONDARY_MEASURES).assign(
                baseline=models[0], variant=variant
            )
        )
    verdict_frame = pd.concat(verdicts, ignore_index=True) if verdicts else pd.DataFrame()
    if not verdict_frame.empty and (verdict_frame["n"] < MIN_SEEDS_FOR_TEST).any():
        notes.append(
            f"Too few paired seeds for a test (n = {int(verdict_frame['n'].min())}; at least "
            f"{MIN_SEEDS_FOR_TEST} are needed for an exact paired test to reach p < 0.05): "
            "verdicts are inconclusive by construction. Run more seeds."
        )
    if not table.empty and table["contended"].any():
        notes.append(
            "Some runs shared the machine with other runs (--workers or Ray): their timings were "
            "measured under contention, which weakens the time-per-epoch comparison."
        )
    evals = metric_series(history, "eval_accuracy")
    steps = sorted(evals["step"].unique())
    fractions = (
        fraction_reached(steps_to_threshold(evals, thresholds), table, steps)
        if steps
        else pd.DataFrame(columns=["model", "threshold", "step", "fraction"])
    )
    return StudyResults(
        study=study,
        tracking_uri=client.tracking_uri,
        spec=spec,
        models=models,
        thresholds=thresholds,
        primary_threshold=primary,
        runs=table,
        history=history,
        verdicts=verdict_frame,
        secondary=pd.concat(secondary, ignore_index=True) if secondary else pd.DataFrame(),
        summary=model_summary(table, thresholds) if not table.empty else pd.DataFrame(),
        fractions=fractions,
        excluded=excluded,
        notes=notes,
    )
