"""A study's evidence and what it says: which stored runs count, and their statistics.

Which runs count: the finished runs whose config hash belongs to the spec last run under the
study's name (never older settings), of reruns (--force) the latest, and only those that hold
every required metric; the rest are named as excluded. Each run's arm is the spec's arm with
its config hash. Then analysis.py turns them into per-run measures, verdicts and summaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mnistlab import names
from mnistlab.errors import MnistlabError
from mnistlab.names import ROLE_TAG
from mnistlab.results.budget import equal_budget
from mnistlab.spec.measures import LOWER, SAME, TIMING
from mnistlab.spec.parse import spec_from_record
from mnistlab.spec.study import Claim, StudySpec
from mnistlab.stats.analysis import (
    SECONDARY_MEASURES,
    arm_summary,
    compare_arms,
    fraction_reached,
    hypotheses,
    median_interval,
    metric_series,
    min_seeds_for_verdict,
    paired_evidence,
    per_run_table,
    secondary_comparisons,
    steps_to_threshold,
)
from mnistlab.stats.sequential import SequentialDesign, sequential_decide
from mnistlab.stats.verdicts import Verdict
from mnistlab.store.records import StoredRun
from mnistlab.store.store import Store
from mnistlab.training.datasets import DATASETS
from mnistlab.training.divergence import DIVERGENCE_RULE


def decided(verdict: str) -> bool:
    return Verdict(verdict).decided


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
    all_runs: pd.DataFrame = field(default_factory=pd.DataFrame)  # every run, any status
    wall_clock: pd.DataFrame = field(default_factory=pd.DataFrame)  # per arm x threshold
    wall_clock_comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)  # descriptive
    equal_budget: pd.DataFrame = field(default_factory=pd.DataFrame)  # per variant, descriptive
    looks_taken: int = 0  # adaptive studies: looks whose runs are all there

    @property
    def design(self) -> SequentialDesign | None:
        return self.spec.design()

    @property
    def all_decided(self) -> bool:
        return not self.verdicts.empty and bool(self.verdicts["verdict"].map(decided).all())

    def look_summary(self) -> str:
        """One line on where a sequential study stands."""
        design = self.design
        if design is None or not self.looks_taken:
            return "no complete look yet"
        settled = int(self.verdicts["verdict"].map(decided).sum())
        return (
            f"look {self.looks_taken} of {len(design.looks())} "
            f"({design.looks()[self.looks_taken - 1]} seeds): {settled} of {len(self.verdicts)} "
            "claim(s) decided"
        )

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
        """Hypotheses under one Holm correction: difference tests plus equivalence tests."""
        if self.verdicts.empty:
            tests = sum((c.direction != SAME) + (c.margin is not None) for c in self.spec.claims)
            return tests * len(self.spec.variants)
        return hypotheses(self.verdicts)

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
                "diverged": tags.get("diverged", "false") == "true",
                "failure_reason": tags.get("failure_reason", ""),
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


def load_evidence(
    store: Store, study: str
) -> tuple[StudySpec, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(spec, runs, history, all runs) of the runs that count for the study as last specified.

    all runs: every run of the experiment, any status, with its train seconds (the compute
    the study cost, failed and killed runs included).
    """
    experiment = store.find_experiment(study)
    if experiment is None:
        raise AnalysisError(
            f"No study called {study!r} in {store.tracking_uri}. Known: "
            f"{', '.join(store.experiment_names()) or 'none'}. Run `mnistlab study "
            f"experiments/{study}.toml` first, or pass the --tracking-uri where it ran."
        )
    record = store.spec_record(experiment)
    if record is None:
        raise AnalysisError(
            f"Experiment {study!r} in {store.tracking_uri} holds no study spec: it was not "
            "written by `mnistlab study` (runs of `mnistlab train` cannot be analysed as a "
            "study). Write a spec in experiments/ and run `mnistlab study` on it."
        )
    spec = spec_from_record(record)
    arm_by_hash = spec.arm_by_hash()
    hashes = set(arm_by_hash)  # the spec's runs, whatever else the experiment holds
    stored = [r for r in store.runs(experiment.experiment_id) if r.tags.get(ROLE_TAG) != "study"]
    runs = _run_rows(stored, arm_by_hash)
    if runs.empty or not (runs["status"] == "FINISHED").any():
        raise AnalysisError(
            f"Study {study!r} has no finished runs in {store.tracking_uri}. "
            f"Run `mnistlab study experiments/{study}.toml` to train them."
        )
    current = runs[(runs["status"] == "FINISHED") & runs["config_hash"].isin(hashes)]
    current = current.sort_values("start_time").drop_duplicates("config_hash", keep="last")
    history = store.histories(current["run_id"].tolist(), names.HISTORY)
    all_runs = pd.DataFrame(
        {
            "run_name": [r.run_name for r in stored],
            "arm": runs["arm"].tolist() if not runs.empty else [],
            "status": [r.status for r in stored],
            "failure_reason": runs["failure_reason"].tolist() if not runs.empty else [],
            # Cumulative train seconds at the last evaluation, or the whole epoch when done.
            "train_seconds": [
                max(
                    r.metrics.get(names.TRAIN_SECONDS, 0.0),
                    r.metrics.get(names.EPOCH_TRAIN_SECONDS, 0.0),
                )
                for r in stored
            ],
        }
    )
    return spec, current.reset_index(drop=True), history, all_runs


def missing_metrics(runs: pd.DataFrame, history: pd.DataFrame) -> dict[str, list[str]]:
    """Run id -> required metrics it lacks (a run logged by hand, or by older code)."""
    present = history.groupby("run_id")["key"].apply(set).to_dict()
    gaps = {}
    for run_id in runs["run_id"]:
        lacking = [k for k in names.REQUIRED if k not in present.get(run_id, set())]
        if lacking:
            gaps[run_id] = lacking
    return gaps


def analyse(store: Store, study: str) -> StudyResults:
    spec, runs, history, all_runs = load_evidence(store, study)
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
    evidence, clean_note = clean_timings(table)
    if clean_note:
        notes.append(clean_note)
    verdicts, secondary, looks_taken = pd.DataFrame(), [], 0
    for arm in (a for a in spec.arm_names if a not in arms):
        failed = all_runs[(all_runs["arm"] == arm) & (all_runs["status"] != "FINISHED")]
        listing = "; ".join(
            f"{row.run_name} {row.status}"
            + (f" ({row.failure_reason[:120]})" if row.failure_reason else "")
            for row in failed.itertuples()
        )
        notes.append(
            f"Arm {arm} has no usable runs"
            + (f": {listing}" if listing else " yet")
            + f". Rerun `mnistlab study {spec.source}` to train them again; finished runs are kept."
        )
    if spec.baseline not in arms or not variants:
        notes.append(
            "The spec has a single arm: there is nothing to compare, so no verdicts. Add a second "
            "arm to the spec and rerun."
            if len(spec.arms) < 2
            else "Without usable runs of the baseline and at least one variant there are no verdicts."
        )
    else:
        if spec.design() is None:
            verdicts = compare_arms(evidence, spec.baseline, variants, list(spec.claims))
        else:
            verdicts, looks_taken = sequential_verdicts(evidence, spec, variants)
            if not looks_taken:
                notes.append(
                    f"The first look ({len(spec.seeds)} seeds per arm) is not complete yet, so "
                    "there is no verdict. Run `mnistlab study` to train it."
                )
        for variant in variants:
            secondary.append(
                secondary_comparisons(evidence, spec.baseline, variant, SECONDARY_MEASURES).assign(
                    baseline=spec.baseline, variant=variant
                )
            )
    if not verdicts.empty and (verdicts["n"] == 0).any():
        unmeasured = sorted(set(verdicts.loc[verdicts["n"] == 0, "claim"]))
        notes.append(
            f"{', '.join(unmeasured)} could not be measured on these runs (n = 0): the runs are "
            "too short (loss noise needs at least 20 steps after the warm-up) or never evaluated "
            "the threshold. Lengthen the runs (train_size, epochs) rather than adding seeds."
        )
    if not verdicts.empty and spec.design() is None:
        needed = min_seeds_for_verdict(hypotheses(verdicts))
        measured = verdicts[verdicts["n"] > 0]
        if (measured["n"] < needed).any():
            notes.append(
                f"Too few paired seeds for a verdict (n = {int(measured['n'].min())}; with "
                f"{hypotheses(verdicts)} test(s) under Holm's correction at least {needed} are needed "
                "for an exact paired test to reach p < 0.05): those verdicts are inconclusive "
                "by construction. Run more seeds."
            )
        tied = measured[(measured["n"] >= needed) & (measured["informative"] < needed)]
        for row in tied.itertuples():
            notes.append(
                f"{row.variant}, {row.claim}: {row.n} paired seeds, but {row.n - row.informative} "
                f"tied, and ties do not move an exact test: {row.informative} untied seed(s) "
                f"cannot reach p < 0.05 with {hypotheses(verdicts)} test(s) under Holm, so this "
                f"study cannot reach a verdict on it as it stands; it needs "
                f"{needed - row.informative} more untied seed(s)."
            )
    if not table.empty:
        mixed = [
            f"{label} ({', '.join(sorted(set(table[column].astype(str))))})"
            for column, label in (("threads", "thread counts"), ("device", "devices"))
            if table[column].astype(str).nunique() > 1
        ]
        if mixed:
            notes.append(
                f"Runs were trained at different {' and '.join(mixed)}: float reductions then run "
                "in a different order, so their numbers agree statistically, not bit for bit. "
                "Rerun with `mnistlab study --strict` (or strict = true in the spec) to retrain "
                "the runs that differ from this machine's setting."
            )
    if not table.empty and table["diverged"].any():
        run_names = ", ".join(table.loc[table["diverged"], "run_name"])
        notes.append(
            f"Diverged runs ({DIVERGENCE_RULE}): {run_names}. They finished without a NaN and are "
            "counted in the statistics as samples of their arm; a diverging arm usually needs "
            "a smaller learning rate."
        )
    evals = metric_series(history, names.EVAL_ACCURACY)
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
        all_runs=all_runs,
        wall_clock=wall_clock(evidence, arms, list(spec.thresholds))
        if not table.empty
        else pd.DataFrame(),
        wall_clock_comparisons=wall_clock_comparisons(evidence, spec, variants),
        equal_budget=equal_budget(table, history, spec.baseline, variants)
        if not table.empty and spec.baseline in arms
        else pd.DataFrame(),
        looks_taken=looks_taken,
    )


def sequential_verdicts(
    table: pd.DataFrame, spec: StudySpec, variants: list[str]
) -> tuple[pd.DataFrame, int]:
    """Replay an adaptive study's looks on its runs: (verdicts, complete looks)."""
    design = spec.design()
    nominal = design.nominal()  # the level each look decides at, so its interval's too
    evidence = []
    for look, count in enumerate(design.looks()):
        seeds = set(range(count))
        part = table[table["seed"].isin(seeds)]
        complete = all(
            seeds <= set(part.loc[part["arm"] == arm, "seed"]) for arm in [spec.baseline, *variants]
        )
        if not complete:
            break
        evidence.append(
            paired_evidence(part, spec.baseline, variants, list(spec.claims), 1 - nominal[look])
        )
    if not evidence:
        return pd.DataFrame(), 0
    return sequential_decide(evidence, design), len(evidence)


def clean_timings(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The run table with the clock's measures blanked for contended runs, and a note.

    A run is contended when another live run on its host overlapped it (liveness.py): its
    times measure the sharing, not the arm. Timing claims and timing comparisons are then
    tested on the seeds whose two runs both ran alone; with too few, the verdict is
    inconclusive and the note says why.
    """
    if table.empty or not table["contended"].any():
        return table, ""
    # The clock's columns, claimed or not: named after measures.TIMING (seconds_to_0.95 ...).
    columns = [c for c in table.columns if c.startswith(TIMING)]
    clean = table.copy()
    clean.loc[clean["contended"], columns] = np.nan
    run_names = ", ".join(table.loc[table["contended"], "run_name"])
    return clean, (
        f"{int(table['contended'].sum())} run(s) shared this machine with another run while "
        f"they trained ({run_names}): their times are left out of every timing claim and "
        "comparison, which use only seeds whose runs ran alone. Where that leaves too few "
        "seeds, the timing verdict is inconclusive: retrain with nothing else running "
        "(`mnistlab study SPEC --force`, one invocation, --workers 1)."
    )


def wall_clock(table: pd.DataFrame, arms: list[str], thresholds: list[float]) -> pd.DataFrame:
    """Train seconds to each threshold per arm: median and a 95% order-statistic interval
    over seeds, a run that never reached it counted as not reached (infinite)."""
    rows = []
    for arm in arms:
        group = table[table["arm"] == arm]
        for threshold in thresholds:
            reached = group[f"reached_{threshold:g}"].astype(bool).to_numpy()
            seconds = group[f"seconds_to_{threshold:g}"].to_numpy(float)
            median, low, high = median_interval(np.where(reached, seconds, np.inf))
            rows.append(
                {
                    "arm": arm,
                    "threshold": threshold,
                    "runs": len(group),
                    "not_reached": int((~reached).sum()),
                    "median_seconds": median,
                    "low": low,
                    "high": high,
                    "median_steps": float(
                        np.median(np.where(reached, group[f"steps_to_{threshold:g}"], np.inf))
                    ),
                }
            )
    return pd.DataFrame(rows)


def wall_clock_comparisons(
    table: pd.DataFrame, spec: StudySpec, variants: list[str]
) -> pd.DataFrame:
    """Descriptive (uncorrected) paired ratios of train seconds to each threshold: does a
    variant get there sooner on the clock? Censored pairs are handled as in the verdicts."""
    if table.empty or spec.baseline not in set(table["arm"]) or not variants:
        return pd.DataFrame()
    claims = [Claim(f"seconds_to:{t:g}", LOWER) for t in spec.thresholds]
    return paired_evidence(table, spec.baseline, variants, claims)


def power_analysis(
    results: StudyResults, effects: dict[str, float] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeds needed and detectable effects for every claim (power.study_power); effects:
    claim metric -> the effect to size the study for, in the claim's units."""
    from mnistlab.stats.power import study_power

    if results.runs.empty or results.baseline not in results.arms or not results.variants:
        return pd.DataFrame(), pd.DataFrame()
    return study_power(
        results.runs,
        results.baseline,
        results.variants,
        list(results.spec.claims),
        results.family_size,
        effects=effects,
    )
