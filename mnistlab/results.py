"""A study's evidence and what it says: which stored runs count, and their statistics.

Which runs count: the finished runs whose config hash belongs to the spec last run under the
study's name (never older settings), of reruns (--force) the latest, and only those that hold
every required metric; the rest are named as excluded. Each run's arm is the spec's arm with
its config hash. Then analysis.py turns them into per-run measures, verdicts and summaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mnistlab import metrics
from mnistlab.analysis import (
    SECONDARY_MEASURES,
    arm_summary,
    compare_arms,
    fraction_reached,
    metric_series,
    min_seeds_for_verdict,
    per_run_table,
    secondary_comparisons,
    steps_to_threshold,
)
from mnistlab.config import StudySpec, spec_from_record
from mnistlab.data import DATASETS
from mnistlab.errors import MnistlabError
from mnistlab.tracking import Store, StoredRun


class AnalysisError(MnistlabError):
    """A study cannot be analysed as asked; the message says why and what to do."""


@dataclass
class StudyResults:
    study: str
    tracking_uri: str
    spec: StudySpec
    arms: list[str]  # the spec's arms that have usable runs, in the spec's order
    runs: pd.DataFrame  # one row per usable run, with per-run measures
    history: pd.DataFrame  # one row per (run, metric, step)
    verdicts: pd.DataFrame  # one row per (variant, claim)
    secondary: pd.DataFrame  # one row per (variant, other measure): descriptive, uncorrected
    summary: pd.DataFrame  # one row per arm
    fractions: pd.DataFrame  # fraction of seeds past each threshold by step
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (run name, reason)
    notes: list[str] = field(default_factory=list)  # why a verdict is missing, caveats

    @property
    def baseline(self) -> str:
        return self.spec.baseline

    @property
    def variants(self) -> list[str]:
        return [arm for arm in self.arms if arm != self.baseline]

    @property
    def thresholds(self) -> list[float]:
        return list(self.spec.thresholds)

    @property
    def primary_threshold(self) -> float:
        return self.spec.primary_threshold

    @property
    def dataset_title(self) -> str:
        return DATASETS[self.spec.dataset].title

    @property
    def family_size(self) -> int:
        return len(self.verdicts) if not self.verdicts.empty else self.spec.family_size

    @property
    def min_seeds(self) -> int:
        return min_seeds_for_verdict(self.family_size)

    @property
    def contended(self) -> bool:
        return bool(self.runs["contended"].any())


def _run_rows(runs: list[StoredRun], arm_by_hash: dict[str, str]) -> pd.DataFrame:
    """Tidy run rows: the tags analysis and the report need, typed, with each run's arm."""
    rows = []
    for run in runs:
        tags = run.tags
        rows.append(
            {
                "run_id": run.run_id,
                "run_name": run.run_name,
                "arm": arm_by_hash.get(tags.get("config_hash", ""), ""),
                "model": tags.get("model", ""),
                "seed": int(tags.get("seed", -1)),
                "status": run.status,
                "config_hash": tags.get("config_hash", ""),
                "contended": tags.get("contended", "false") == "true",
                "executor": tags.get("executor", ""),
                "threads": tags.get("threads", ""),
                "device": tags.get("device", ""),
                "gpu": tags.get("gpu", ""),
                "cpu": tags.get("cpu", ""),
                "host": tags.get("host", ""),
                "git_commit": tags.get("git_commit", ""),
                "git_dirty": tags.get("git_dirty", ""),
                "torch_version": tags.get("torch_version", ""),
                "mlflow_version": tags.get("mlflow_version", ""),
                "python_version": tags.get("python_version", ""),
                "start_time": run.start_time,
            }
        )
    return pd.DataFrame(rows)


def load_evidence(store: Store, study: str) -> tuple[StudySpec, pd.DataFrame, pd.DataFrame]:
    """(spec, runs, history) of the runs that count for the study as last specified."""
    experiment = store.find_experiment(study)
    if experiment is None:
        raise AnalysisError(
            f"No study called {study!r} in {store.tracking_uri}. Known: "
            f"{', '.join(store.experiment_names()) or 'none'}. Run `mnistlab study "
            f"experiments/{study}.toml` first, or pass the --tracking-uri where it ran."
        )
    record = experiment.spec_record
    if record is None:
        raise AnalysisError(
            f"Experiment {study!r} in {store.tracking_uri} holds no study spec: it was not "
            "written by `mnistlab study` (runs of `mnistlab train` cannot be analysed as a "
            "study). Write a spec in experiments/ and run `mnistlab study` on it."
        )
    spec = spec_from_record(record)
    arm_by_hash = spec.arm_by_hash()
    hashes = set(experiment.config_hashes) or set(arm_by_hash)
    runs = _run_rows(store.runs(experiment.experiment_id), arm_by_hash)
    if runs.empty or not (runs["status"] == "FINISHED").any():
        raise AnalysisError(
            f"Study {study!r} has no finished runs in {store.tracking_uri}. "
            f"Run `mnistlab study experiments/{study}.toml` to train them."
        )
    current = runs[(runs["status"] == "FINISHED") & runs["config_hash"].isin(hashes)]
    current = current.sort_values("start_time").drop_duplicates("config_hash", keep="last")
    history = store.histories(current["run_id"].tolist(), metrics.HISTORY)
    return spec, current.reset_index(drop=True), history


def missing_metrics(runs: pd.DataFrame, history: pd.DataFrame) -> dict[str, list[str]]:
    """Run id -> required metrics it lacks (a run logged by hand, or by older code)."""
    present = history.groupby("run_id")["key"].apply(set).to_dict()
    gaps = {}
    for run_id in runs["run_id"]:
        lacking = [k for k in metrics.REQUIRED if k not in present.get(run_id, set())]
        if lacking:
            gaps[run_id] = lacking
    return gaps


def analyse(store: Store, study: str) -> StudyResults:
    spec, runs, history = load_evidence(store, study)
    notes: list[str] = []
    excluded = []
    gaps = missing_metrics(runs, history)
    for run_id, lacking in gaps.items():
        name = runs.loc[runs["run_id"] == run_id, "run_name"].iloc[0]
        excluded.append((name, f"missing metrics: {', '.join(lacking)}"))
    runs = runs[~runs["run_id"].isin(gaps)]
    history = history[history["run_id"].isin(runs["run_id"])]
    arms = [arm for arm in spec.arm_names if arm in set(runs["arm"])]
    thresholds = list(spec.analysis_thresholds)
    table = per_run_table(runs, history, thresholds) if not runs.empty else runs
    variants = [arm for arm in arms if arm != spec.baseline]
    verdicts, secondary = pd.DataFrame(), []
    if spec.baseline not in arms or not variants:
        notes.append(
            f"Only {len(arms)} arm has usable runs ({', '.join(arms) or 'none'}): there is "
            "nothing to compare, so no verdicts. Add a second arm to the spec and rerun."
            if len(arms) < 2
            else f"The baseline {spec.baseline} has no usable runs, so no verdicts."
        )
    else:
        claims = [(claim.measure, claim.direction) for claim in spec.claims]
        verdicts = compare_arms(table, spec.baseline, variants, claims)
        for variant in variants:
            secondary.append(
                secondary_comparisons(table, spec.baseline, variant, SECONDARY_MEASURES).assign(
                    baseline=spec.baseline, variant=variant
                )
            )
    if not verdicts.empty:
        needed = min_seeds_for_verdict(len(verdicts))
        if (verdicts["n"] < needed).any():
            notes.append(
                f"Too few paired seeds for a verdict (n = {int(verdicts['n'].min())}; with "
                f"{len(verdicts)} test(s) under Holm's correction at least {needed} are needed "
                "for an exact paired test to reach p < 0.05): those verdicts are inconclusive "
                "by construction. Run more seeds."
            )
    if not table.empty and table["contended"].any():
        notes.append(
            "Some runs shared the machine with other runs (--workers or Ray): their timings were "
            "measured under contention, which weakens any comparison of time."
        )
    evals = metric_series(history, metrics.EVAL_ACCURACY)
    steps = sorted(evals["step"].unique())
    fractions = (
        fraction_reached(steps_to_threshold(evals, list(spec.thresholds)), table, steps)
        if steps
        else pd.DataFrame(columns=["arm", "threshold", "step", "fraction"])
    )
    summary = arm_summary(table, thresholds) if not table.empty else pd.DataFrame()
    if not summary.empty:
        summary = summary.set_index("arm").loc[arms].reset_index()
    return StudyResults(
        study=study,
        tracking_uri=store.tracking_uri,
        spec=spec,
        arms=arms,
        runs=table,
        history=history,
        verdicts=verdicts,
        secondary=pd.concat(secondary, ignore_index=True) if secondary else pd.DataFrame(),
        summary=summary,
        fractions=fractions,
        excluded=excluded,
        notes=notes,
    )
