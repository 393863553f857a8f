"""The caveats an analysis states next to its verdicts: one function per caveat.

Each returns its note as a sentence or two that names the problem and the fix, or "" (a list
for those that can apply several times) when the caveat does not apply. results.evidence
collects them in StudyResults.notes, which `analyze`, the report and the study run's MLflow
description all print.
"""

from __future__ import annotations

import pandas as pd

from mnistlab import names
from mnistlab.errors import command_line
from mnistlab.spec.study import StudySpec
from mnistlab.stats.decisions import min_seeds_for_verdict
from mnistlab.stats.multiplicity import hypotheses
from mnistlab.training.divergence import DIVERGENCE_RULE


def contended(table: pd.DataFrame) -> str:
    """Runs that shared their host while they trained: their times are left out."""
    if table.empty or not table[names.CONTENDED_TAG].any():
        return ""
    contended = table[names.CONTENDED_TAG]
    run_names = ", ".join(table.loc[contended, names.RUN_NAME])
    return (
        f"{int(contended.sum())} run(s) shared this machine with another run while "
        f"they trained ({run_names}): their times are left out of every timing claim and "
        "comparison, which use only seeds whose runs ran alone. Where that leaves too few "
        "seeds, the timing verdict is inconclusive: retrain with nothing else running "
        "(`mnistlab study SPEC --force`, one invocation, --workers 1)."
    )


def status_words(status: str) -> str:
    """A run's status as a reader should take it: RUNNING is not yet a failure."""
    if status == names.RUNNING:
        return "RUNNING (training now, or its process died: then the next study run retrains it)"
    return status


def running_advice(statuses: set[str], source: str) -> str:
    """What to do about runs that are not finished: wait for live ones, rerun the rest."""
    rerun = f"Run `{command_line('study', source)}` again to train the missing runs."
    if statuses == {names.RUNNING}:
        return "If its study is still training, look again when it ends; else: " + rerun
    return rerun


def arms_without_runs(spec: StudySpec, arms: list[str], all_runs: pd.DataFrame) -> list[str]:
    """Per arm of the spec with no usable run: its failed runs and how to retrain them."""
    notes = []
    for arm in (a for a in spec.arm_names if a not in arms):
        failed = all_runs[
            (all_runs[names.ARM_TAG] == arm) & (all_runs[names.STATUS] != names.FINISHED)
        ]
        listing = "; ".join(
            f"{row.run_name} {status_words(row.status)}"
            + (f" ({row.failure_reason[:120]})" if row.failure_reason else "")
            for row in failed.itertuples()
        )
        notes.append(
            f"Arm {arm} has no usable runs"
            + (f": {listing}" if listing else " yet")
            + ". "
            + running_advice(set(failed[names.STATUS]), spec.source)
            + " Finished runs are kept."
        )
    return notes


def missing_seeds(
    arms: list[str],
    planned: tuple[int, ...],
    runs: pd.DataFrame,
    all_runs: pd.DataFrame,
    source: str,
) -> list[str]:
    """Per arm with usable runs but not of every planned seed: an interrupted or failed study.

    arms: the arms with usable runs; planned: the spec's seeds; runs: the usable runs (arm and
    seed columns); all_runs: every stored run (arm, seed and status columns), to name why a
    seed is missing; source: the spec's path, for the rerun command.
    """
    notes = []
    for arm in arms:
        have = set(runs.loc[runs[names.ARM_TAG] == arm, names.SEED_TAG])
        missing = [seed for seed in planned if seed not in have]
        if not missing:
            continue
        reasons, unfinished = [], set()
        for seed in missing:
            stored = all_runs[(all_runs[names.ARM_TAG] == arm) & (all_runs[names.SEED_TAG] == seed)]
            statuses = list(dict.fromkeys(stored[names.STATUS]))
            if names.FINISHED in statuses:  # finished but lacking metrics: listed as excluded
                reasons.append(f"seed {seed} finished but left out, see the excluded runs")
            elif statuses:
                words = ", ".join(status_words(s) for s in statuses)
                reasons.append(f"seed {seed} not finished: {words}")
                unfinished.update(statuses)
            else:
                reasons.append(f"seed {seed} never started")
        notes.append(
            f"{arm} has {len(planned) - len(missing)} of its {len(planned)} planned seeds "
            f"({'; '.join(reasons)}); its comparisons pair only the seeds both arms have. "
            + running_advice(unfinished, source)
        )
    return notes


def nothing_to_compare(spec: StudySpec) -> str:
    """Why there are no verdicts when the baseline or every variant lacks runs."""
    return (
        "The spec has a single arm: there is nothing to compare, so no verdicts. Add a second "
        "arm to the spec and rerun."
        if len(spec.arms) < 2
        else "Without usable runs of the baseline and at least one variant there are no verdicts."
    )


def first_look_incomplete(spec: StudySpec) -> str:
    """An adaptive study whose first look has not been trained in full."""
    return (
        f"The first look ({len(spec.seeds)} seeds per arm) is not complete yet, so "
        "there is no verdict. Run `mnistlab study` to train it."
    )


def unmeasured(verdicts: pd.DataFrame) -> str:
    """Claims with no value on any pair (n = 0): runs too short to measure them."""
    if verdicts.empty or not (verdicts["n"] == 0).any():
        return ""
    claims = sorted(set(verdicts.loc[verdicts["n"] == 0, "claim"]))
    return (
        f"{', '.join(claims)} could not be measured on these runs (n = 0): the runs are "
        "too short (loss noise needs at least 20 steps after the warm-up) or never evaluated "
        "the threshold. Lengthen the runs (train_size, epochs) rather than adding seeds."
    )


def too_few_seeds(verdicts: pd.DataFrame) -> str:
    """Fewer paired seeds than any verdict under Holm needs: inconclusive by construction."""
    needed = min_seeds_for_verdict(hypotheses(verdicts))
    measured = verdicts[verdicts["n"] > 0]
    if not (measured["n"] < needed).any():
        return ""
    return (
        f"Too few paired seeds for a verdict (n = {int(measured['n'].min())}; with "
        f"{hypotheses(verdicts)} test(s) under Holm's correction at least {needed} are needed "
        "for an exact paired test to reach p < 0.05): those verdicts are inconclusive "
        "by construction. Run more seeds."
    )


def tied_seeds(verdicts: pd.DataFrame) -> list[str]:
    """Per claim with enough seeds but too few untied ones: ties do not move an exact test."""
    needed = min_seeds_for_verdict(hypotheses(verdicts))
    measured = verdicts[verdicts["n"] > 0]
    tied = measured[(measured["n"] >= needed) & (measured["informative"] < needed)]
    return [
        f"{row.variant}, {row.claim}: {row.n} paired seeds, but {row.n - row.informative} "
        f"tied, and ties do not move an exact test: {row.informative} untied seed(s) "
        f"cannot reach p < 0.05 with {hypotheses(verdicts)} test(s) under Holm, so this "
        f"study cannot reach a verdict on it as it stands; it needs "
        f"{needed - row.informative} more untied seed(s)."
        for row in tied.itertuples()
    ]


def mixed_settings(table: pd.DataFrame) -> str:
    """Runs trained at different thread counts or devices: equal statistically, not bitwise."""
    if table.empty:
        return ""
    mixed = [
        f"{label} ({', '.join(sorted(set(table[column].astype(str))))})"
        for column, label in ((names.THREADS_TAG, "thread counts"), (names.DEVICE_TAG, "devices"))
        if table[column].astype(str).nunique() > 1
    ]
    if not mixed:
        return ""
    return (
        f"Runs were trained at different {' and '.join(mixed)}: float reductions then run "
        "in a different order, so their numbers agree statistically, not bit for bit. "
        "Rerun with `mnistlab study --strict` (or strict = true in the spec) to retrain "
        "the runs that differ from this machine's setting."
    )


def diverged(table: pd.DataFrame) -> str:
    """Runs whose loss ended above its start: kept, as samples of their arm."""
    if table.empty or not table[names.DIVERGED_TAG].any():
        return ""
    run_names = ", ".join(table.loc[table[names.DIVERGED_TAG], names.RUN_NAME])
    return (
        f"Diverged runs ({DIVERGENCE_RULE}): {run_names}. They finished without a NaN and are "
        "counted in the statistics as samples of their arm; a diverging arm usually needs "
        "a smaller learning rate."
    )


def with_power_caveats(table: pd.DataFrame, verdicts: list, adaptive: bool) -> pd.DataFrame:
    """The power table (stats.power.study_power) with each row's note extended by what the
    power analysis leaves out for its (variant, claim): power_caveats."""
    left_out = power_caveats(verdicts, adaptive)
    table = table.copy()
    table["note"] = [
        " ".join(filter(None, [row.note, left_out.get((row.variant, row.claim), "")]))
        for row in table.itertuples()
    ]
    return table


def power_caveats(verdicts: list, adaptive: bool) -> dict[tuple[str, str], str]:
    """(variant, claim) -> what the power analysis leaves out for it, in words ('' if nothing).

    verdicts: the study's ClaimVerdicts; adaptive: the spec has an [adaptive] design. Power is
    simulated for a fixed design at alpha with the exact test on complete pairs, so censored
    pairs (counted against the verdict by the real test) make it optimistic, and an adaptive
    study's looks test at smaller nominal levels than alpha.
    """
    caveats = {}
    for verdict in verdicts:
        words = []
        if verdict.censored_pairs:
            words.append(
                f"{verdict.variant}, {verdict.claim}: {verdict.censored_pairs} of {verdict.n} "
                "pairs are censored (a run never reached the threshold); power takes their last "
                "evaluated step as measured, while the real test counts each pair of unknown "
                "sign against the verdict, so the power and seeds shown are optimistic."
            )
        if adaptive:
            words.append(
                "This study is adaptive: power here is of a fixed study at its alpha, while the "
                "sequential looks test at smaller nominal levels, so a fixed study of the seeds "
                "shown is what it sizes; the adaptive design's own power is in "
                "bench/sequential_error.py's simulation."
            )
        caveats[(verdict.variant, verdict.claim)] = " ".join(words)
    return caveats
