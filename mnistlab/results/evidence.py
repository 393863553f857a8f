"""A study's evidence and what it says: which stored runs count, and their statistics.

Which runs count: the finished runs whose config hash belongs to the spec last run under the
study's name (never older settings), of reruns (--force) the latest, and only those that hold
every required metric; the rest are named as excluded. Each run's arm is the spec's arm with
its config hash. Then features.py turns them into per-run measures, stats their verdicts,
timings.py the clock's measures and notes.py the caveats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mnistlab import names
from mnistlab.errors import MnistlabError, command_line
from mnistlab.results import notes as caveats
from mnistlab.results.budget import equal_budget
from mnistlab.results.features import (
    arm_summary,
    fraction_reached,
    metric_series,
    per_run_table,
    steps_to_threshold,
)
from mnistlab.results.timings import clean_timings, wall_clock, wall_clock_comparisons
from mnistlab.spec.describe import study_differences
from mnistlab.spec.measures import SAME
from mnistlab.spec.parse import spec_from_record
from mnistlab.spec.study import StudySpec
from mnistlab.spec.studyname import run_spec_hint
from mnistlab.stats.analysis import SECONDARY_MEASURES, paired_evidence, secondary_comparisons
from mnistlab.stats.claim_verdicts import ClaimVerdict, claim_verdicts, verdicts_frame
from mnistlab.stats.decisions import compare_arms, min_seeds_for_verdict
from mnistlab.stats.multiplicity import hypotheses
from mnistlab.stats.sequential import SequentialDesign, sequential_decide
from mnistlab.store.records import StoredRun
from mnistlab.store.store import Store
from mnistlab.training.dataset_registry import dataset_info


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
    claim_verdicts: tuple[ClaimVerdict, ...]  # one per (variant, claim), decided once
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
    def verdicts(self) -> pd.DataFrame:
        """The verdicts as a table (verdicts.csv): one row per ClaimVerdict, its fields."""
        return verdicts_frame(self.claim_verdicts)

    @property
    def all_decided(self) -> bool:
        return bool(self.claim_verdicts) and all(v.verdict.decided for v in self.claim_verdicts)

    def look_summary(self) -> str:
        """One line on where a sequential study stands."""
        design = self.design
        if design is None or not self.looks_taken:
            return "no complete look yet"
        settled = sum(v.verdict.decided for v in self.claim_verdicts)
        return (
            f"look {self.looks_taken} of {len(design.looks())} "
            f"({design.looks()[self.looks_taken - 1]} seeds): {settled} of "
            f"{len(self.claim_verdicts)} "
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
    def parameters(self) -> dict[str, int]:
        """Arm -> its net's parameter count, as its runs logged it (arms without one left out)."""
        if self.runs.empty or names.N_PARAMETERS_TAG not in self.runs:  # tables made by hand
            return {}
        column = self.runs[names.N_PARAMETERS_TAG]
        counts = self.runs[column > 0].groupby(names.ARM_TAG)[names.N_PARAMETERS_TAG].first()
        return {str(arm): int(n) for arm, n in counts.items()}

    @property
    def differences(self) -> dict[str, str]:
        """Variant -> what it changes against the baseline, in words (spec.describe)."""
        return study_differences(self.spec, self.parameters)

    @property
    def dataset_title(self) -> str:
        return dataset_info(self.spec.dataset).title

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
        return bool(self.runs[names.CONTENDED_TAG].any())


def _run_rows(runs: list[StoredRun], arm_by_hash: dict[str, str]) -> pd.DataFrame:
    """Tidy run rows: the tags analysis and the report need, typed, with each run's arm."""
    rows = []
    for run in runs:
        tags = run.tags
        config_hash = tags.get(names.CONFIG_HASH_TAG, "")
        rows.append(
            {
                names.RUN_ID: run.run_id,
                names.RUN_NAME: run.run_name,
                names.ARM_TAG: arm_by_hash.get(config_hash, ""),
                names.MODEL_TAG: tags.get(names.MODEL_TAG, ""),
                names.SEED_TAG: int(tags.get(names.SEED_TAG, -1)),
                names.STATUS: run.status,
                names.CONFIG_HASH_TAG: config_hash,
                names.CONTENDED_TAG: tags.get(names.CONTENDED_TAG, "false") == names.TRUE,
                names.DIVERGED_TAG: tags.get(names.DIVERGED_TAG, "false") == names.TRUE,
                names.N_PARAMETERS_TAG: int(tags.get(names.N_PARAMETERS_TAG) or 0),
                **{tag: tags.get(tag, "") for tag in names.RUN_TEXT_TAGS},
                names.START_TIME: run.start_time,
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
    experiment, spec = _stored_spec(store, study)
    stored = [
        r
        for r in store.runs(experiment.experiment_id)
        if r.tags.get(names.ROLE_TAG) != names.STUDY_ROLE
    ]
    arm_by_hash = spec.arm_by_hash()
    runs = _run_rows(stored, arm_by_hash)
    if runs.empty or not (runs[names.STATUS] == names.FINISHED).any():
        raise AnalysisError(
            f"Study {study!r} has no finished runs in {store.tracking_uri}. "
            f"Run `{command_line('study', spec.source)}` to train them."
        )
    current = _counting_runs(runs, set(arm_by_hash))
    history = store.histories(current[names.RUN_ID].tolist(), names.HISTORY)
    return spec, current, history, _all_runs(stored, runs, set(arm_by_hash))


def _stored_spec(store: Store, study: str):  # noqa: ANN202 - (an MLflow Experiment, StudySpec)
    """The study's experiment and the spec last run under its name; AnalysisError naming
    what is missing and what to do when there is no such study or it holds no spec."""
    experiment = store.find_experiment(study)
    if experiment is None:
        raise AnalysisError(
            f"No study called {study!r} in {store.tracking_uri}. Known: "
            f"{', '.join(store.experiment_names()) or 'none'}. {run_spec_hint(study)}, or "
            "pass the --tracking-uri where it ran."
        )
    record = store.spec_record(experiment)
    if record is None:
        raise AnalysisError(
            f"Experiment {study!r} in {store.tracking_uri} holds no study spec: it was not "
            "written by `mnistlab study` (runs of `mnistlab train` cannot be analysed as a "
            "study). Write a spec in experiments/ and run `mnistlab study` on it."
        )
    return experiment, spec_from_record(record)


def _counting_runs(runs: pd.DataFrame, hashes: set[str]) -> pd.DataFrame:
    """The finished runs of the spec's config hashes (whatever else the experiment holds),
    of reruns the latest."""
    current = runs[
        (runs[names.STATUS] == names.FINISHED) & runs[names.CONFIG_HASH_TAG].isin(hashes)
    ]
    current = current.sort_values(names.START_TIME).drop_duplicates(
        names.CONFIG_HASH_TAG, keep="last"
    )
    return current.reset_index(drop=True)


def _all_runs(stored: list[StoredRun], runs: pd.DataFrame, hashes: set[str]) -> pd.DataFrame:
    """Every stored run, any status, with its arm, seed, failure and train seconds, and whether
    it is one of this spec's (OF_SPEC: its config hash is; else a replaced spec's)."""
    return pd.DataFrame(
        {
            names.OF_SPEC: runs[names.CONFIG_HASH_TAG].isin(hashes).tolist()
            if not runs.empty
            else [],
            names.RUN_NAME: [r.run_name for r in stored],
            names.ARM_TAG: runs[names.ARM_TAG].tolist() if not runs.empty else [],
            names.SEED_TAG: runs[names.SEED_TAG].tolist() if not runs.empty else [],
            names.STATUS: [r.status for r in stored],
            names.FAILURE_REASON_TAG: runs[names.FAILURE_REASON_TAG].tolist()
            if not runs.empty
            else [],
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


def missing_metrics(runs: pd.DataFrame, history: pd.DataFrame) -> dict[str, list[str]]:
    """Run id -> required metrics it lacks (a run logged by hand, or by older code)."""
    present = history.groupby(names.RUN_ID)["key"].apply(set).to_dict()
    gaps = {}
    for run_id in runs[names.RUN_ID]:
        lacking = [k for k in names.REQUIRED if k not in present.get(run_id, set())]
        if lacking:
            gaps[run_id] = lacking
    return gaps


def _drop_incomplete_runs(
    runs: pd.DataFrame, history: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, str]]]:
    """Runs (and their history) without every metric left out, each named with what it lacks."""
    excluded = []
    gaps = missing_metrics(runs, history)
    for run_id, lacking in gaps.items():
        name = runs.loc[runs[names.RUN_ID] == run_id, names.RUN_NAME].iloc[0]
        excluded.append((name, f"missing metrics: {', '.join(lacking)}"))
    runs = runs[~runs[names.RUN_ID].isin(gaps)]
    history = history[history[names.RUN_ID].isin(runs[names.RUN_ID])]
    return runs, history, excluded


def _compare_variants(
    evidence: pd.DataFrame, spec: StudySpec, arms: list[str], variants: list[str]
) -> tuple[pd.DataFrame, list[pd.DataFrame], int, list[str]]:
    """(verdicts, secondary comparisons, looks taken, notes): fixed or sequential design."""
    verdicts, secondary, looks_taken, notes = pd.DataFrame(), [], 0, []
    if spec.baseline not in arms or not variants:
        return verdicts, secondary, looks_taken, [caveats.nothing_to_compare(spec)]
    if spec.design() is None:
        verdicts = compare_arms(evidence, spec.baseline, variants, list(spec.claims))
    else:
        verdicts, looks_taken = sequential_verdicts(evidence, spec, variants)
        if not looks_taken:
            notes.append(caveats.first_look_incomplete(spec))
    for variant in variants:
        secondary.append(
            secondary_comparisons(evidence, spec.baseline, variant, SECONDARY_MEASURES).assign(
                baseline=spec.baseline, variant=variant
            )
        )
    return verdicts, secondary, looks_taken, notes


def _fractions_reached(history: pd.DataFrame, spec: StudySpec, table: pd.DataFrame) -> pd.DataFrame:
    """Per arm and threshold, the share of runs that had reached it at each evaluation step."""
    evals = metric_series(history, names.EVAL_ACCURACY)
    steps = sorted(evals["step"].unique())
    if not steps:
        return pd.DataFrame(columns=["arm", "threshold", "step", "fraction"])
    return fraction_reached(steps_to_threshold(evals, list(spec.thresholds)), table, steps)


def analyse(store: Store, study: str) -> StudyResults:
    spec, runs, history, all_runs = load_evidence(store, study)
    runs, history, excluded = _drop_incomplete_runs(runs, history)
    arms = [arm for arm in spec.arm_names if arm in set(runs[names.ARM_TAG])]
    thresholds = list(spec.analysis_thresholds)
    table = per_run_table(runs, history, thresholds) if not runs.empty else runs
    variants = [arm for arm in arms if arm != spec.baseline]
    evidence, clean_note = clean_timings(table)
    notes = [clean_note, *caveats.arms_without_runs(spec, arms, all_runs)]
    if spec.design() is None:  # an adaptive study's seeds come per look, noted on their own
        notes.extend(caveats.missing_seeds(arms, spec.seeds, runs, all_runs, spec.source))
    verdicts, secondary, looks_taken, comparison_notes = _compare_variants(
        evidence, spec, arms, variants
    )
    notes.extend(comparison_notes)
    notes.append(caveats.unmeasured(verdicts))
    if not verdicts.empty and spec.design() is None:
        notes.append(caveats.too_few_seeds(verdicts))
        notes.extend(caveats.tied_seeds(verdicts))
    notes.extend((caveats.mixed_settings(table), caveats.diverged(table)))
    notes = [note for note in notes if note]
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
        claim_verdicts=claim_verdicts(verdicts),
        secondary=pd.concat(secondary, ignore_index=True) if secondary else pd.DataFrame(),
        summary=summary,
        fractions=_fractions_reached(history, spec, table),
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
        part = table[table[names.SEED_TAG].isin(seeds)]
        complete = all(
            seeds <= set(part.loc[part[names.ARM_TAG] == arm, names.SEED_TAG])
            for arm in [spec.baseline, *variants]
        )
        if not complete:
            break
        evidence.append(
            paired_evidence(part, spec.baseline, variants, list(spec.claims), 1 - nominal[look])
        )
    if not evidence:
        return pd.DataFrame(), 0
    return sequential_decide(evidence, design), len(evidence)


def power_analysis(
    results: StudyResults, effects: dict[str, float] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeds needed and detectable effects for every claim (power.study_power); effects:
    claim metric -> the effect to size the study for, in the claim's units."""
    from mnistlab.stats.power import study_power

    if results.runs.empty or results.baseline not in results.arms or not results.variants:
        return pd.DataFrame(), pd.DataFrame()
    table, curves = study_power(
        results.runs,
        results.baseline,
        results.variants,
        list(results.spec.claims),
        results.family_size,
        effects=effects,
    )
    adaptive = results.spec.adaptive is not None
    return caveats.with_power_caveats(table, results.claim_verdicts, adaptive), curves
