"""The answer in words, generated from the numbers: what each verdict means, what the arms
cost on the clock, the paper's own question, and the reproducibility checklist."""

from __future__ import annotations

import math

import numpy as np

from mnistlab import names
from mnistlab.report.tables import (
    equivalence_level,
    estimate_text,
    interval_text,
    level,
    margin_words,
)
from mnistlab.results.evidence import StudyResults
from mnistlab.spec.measures import measure
from mnistlab.stats.analysis import paired_values
from mnistlab.stats.claim_verdicts import ClaimVerdict
from mnistlab.stats.verdicts import Verdict
from mnistlab.training.owndata import provenance

SUPPORTED, CONTRADICTED, EQUIVALENT = Verdict.SUPPORTED, Verdict.CONTRADICTED, Verdict.EQUIVALENT
INCONCLUSIVE, NOT_EQUIVALENT = Verdict.INCONCLUSIVE, Verdict.NOT_EQUIVALENT
DIFFERS, NO_DIFFERENCE = Verdict.DIFFERS, Verdict.NO_DIFFERENCE


def number(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "not reached" if value > 0 else "–"
    return f"{value:.{digits}g}"


def estimate_words(row) -> str:  # noqa: ANN001 - a ClaimVerdict or evidence row
    """'ratio 1.2×, 95% CI [1.03×, 1.44×]' at the level the interval has; for censored pairs
    the bounds on the median and the interval that allows for them; 'all 7 seeds equal'."""
    interval = interval_text(row)
    if not interval.startswith("["):
        return f"{estimate_text(row)} ({interval})"
    kind = "CI for the median" if row.censored_pairs else "CI"
    return f"{estimate_text(row)}, {level(row.confidence)} {kind} {interval}"


def interval90(row) -> str:  # noqa: ANN001 - a ClaimVerdict or evidence row
    unit = "×" if row.estimate_kind == "ratio" else ""
    return (
        f"{equivalence_level(row)} CI [{number(row.ci90_low, 4)}{unit}, "
        f"{number(row.ci90_high, 4)}{unit}]"
    )


def effect_words(row: ClaimVerdict) -> str:
    """On how many seeds the claim held and its d_z, or why there is no d_z."""
    dz = (
        f"d_z = {number(row.effect_size, 2)}, a {row.magnitude or 'unmeasured'} effect"
        if math.isfinite(row.effect_size)
        else "no d_z: censored runs have no value to average"
        if row.censored_pairs
        else "no d_z: every seed's difference is the same"
        if row.interval_note
        else "no d_z"
    )
    holds = row.beats_words or f"{number(100 * row.p_beats, 3)}% of seeds"
    return f"the claim holds on {holds}; {dz}" if math.isfinite(row.p_beats) else dz


def verdict_sentence(row: ClaimVerdict, companion: str = "") -> tuple[Verdict, str]:
    """(verdict, sentence) of one claim and variant; every Verdict has its wording.

    companion: what a second measure of the same claim says (companion_words), put in the
    same sentence so that a reader never sees one measure's verdict without the other's.
    """
    verdict, effect = row.verdict, effect_words(row)
    look = (
        f" (decided at look {row.look}, {row.seeds_at_look} seeds)"
        if row.sequential and verdict.decided
        else ""
    )
    title = measure(row.claim).title.lower()
    margin = margin_words(row)
    if verdict == SUPPORTED:
        text = f"{row.statement}: {estimate_words(row)}; {effect}{look}."
    elif verdict == CONTRADICTED:
        text = f"the opposite of '{row.statement}' holds: {estimate_words(row)}; {effect}{look}."
    elif verdict == EQUIVALENT:
        text = (
            f"{row.variant} and {row.baseline} are equivalent in {title} within {margin}: "
            f"two one-sided tests put the difference inside the margin, Holm-corrected "
            f"p = {number(row.p_equivalence_holm)}; {interval90(row)}{look}."
        )
    elif verdict == NOT_EQUIVALENT:
        text = (
            f"{row.variant} and {row.baseline} are not shown equivalent in {title} within "
            f"{margin} ({interval90(row)}): {row.note}."
        )
    elif verdict == DIFFERS:
        text = (
            f"{row.variant} differs from {row.baseline} in {title}: {estimate_words(row)}, "
            f"Holm-corrected two-sided p = {number(row.p_holm)}; {effect}{look}."
        )
    elif verdict == NO_DIFFERENCE:
        text = (
            f"no difference in {title} shown between {row.variant} and {row.baseline} "
            f"({estimate_words(row)}): {row.note}. Not shown is not absent: only a margin "
            "and an equivalence test can say they are the same."
        )
    elif verdict == INCONCLUSIVE:
        text = f"{row.statement}? The data cannot tell yet: {row.note}."
    else:  # pragma: no cover - the enumeration test renders every member
        raise AssertionError(f"no wording for verdict {verdict!r}")
    if companion:
        text = f"{text.removesuffix('.')}; {companion}."
    return verdict, text


# A claim's measure -> the other measure of the same notion, which the Conclusion names beside
# it: the log-loss spread is loss noise relative to the loss's level; the paper's raw rolling
# SD is loss noise in the loss's own units, and falls as the loss does.
COMPANIONS = {"log_loss_spread": "raw_loss_sd"}


def companion_words(results: StudyResults, row: ClaimVerdict) -> str:
    """'but by the paper's own measure, ... cnn3's is smaller on 10 of 10 seeds (...): the two
    measures disagree', or that it agrees or cannot tell; '' when the claim has no companion
    or the study no value of it."""
    other = COMPANIONS.get(row.claim)
    if other is None or results.secondary.empty:
        return ""
    found = results.secondary[
        (results.secondary["variant"] == row.variant) & (results.secondary["measure"] == other)
    ]
    if found.empty or not found["n"].iloc[0]:
        return ""
    second = found.iloc[0]
    pairs = paired_values(results.runs, other, row.baseline, row.variant)
    larger = int((pairs["variant"] > pairs["baseline"]).sum())
    smaller = int((pairs["variant"] < pairs["baseline"]).sum())
    way, count = ("larger", larger) if second["difference"] > 0 else ("smaller", smaller)
    numbers = (
        f"{row.variant}'s is {way} on {count} of {len(pairs)} seeds (difference "
        f"{number(second['difference'], 2)}, 95% CI [{number(second['ci_low'], 2)}, "
        f"{number(second['ci_high'], 2)}], p = {number(second['p_value'], 2)})"
    )
    title = measure(other).title
    name = f"the paper's own measure, the {title[0].lower()}{title[1:]}"
    claimed = row.direction if row.direction in (1, -1) else row.evidence
    if second["p_value"] >= 0.05 or not claimed:
        return f"{name}, does not separate them: {numbers}"
    if np.sign(second["difference"]) == claimed:
        return f"{name}, agrees: {numbers}"
    return f"but by {name}, {numbers}: the two measures of this claim disagree"


def verdict_sentences(results: StudyResults) -> list[tuple[Verdict, str]]:
    """(verdict, sentence) per claim and variant, each with its companion measure's word."""
    return [verdict_sentence(row, companion_words(results, row)) for row in results.claim_verdicts]


INTERVALS = (
    "95% interval of the mean per-seed difference (log ratio for ratios) that inverts the "
    "exact sign-flip test: the shifts it does not reject, so it excludes 0 exactly when "
    "p < 0.05; equivalence intervals at 1 - 2 alpha invert the two one-sided tests; with "
    "censored pairs, an order-statistic interval of the median widened to the censoring "
    "bounds"
)
SEQUENTIAL_INTERVALS = (
    "; in this sequential study, at 1 - the nominal level the deciding look tested at"
)
# The run tags a reader needs to rerun the study; one empty on every run is named as unknown.
PROVENANCE_TAGS = ("cpu", "device", "git_commit", "torch_version", "mlflow_version", "threads")


def tests_used(results: StudyResults) -> str:
    """The tests behind the verdicts, with the Holm family and any sequential design."""
    design = results.design
    return (
        "exact two-sided sign-flip permutation test (all 2^n sign patterns up to 16 seeds, "
        "100,000 seeded random ones above); exact sign test where censored pairs exist; "
        f"two one-sided tests for margins; Holm over {results.family_size} test(s)"
        + (
            f"; group-sequential, {len(design.looks())} planned looks at "
            f"{', '.join(map(str, design.looks()))} seeds, Pocock-type alpha spending with "
            "nominal levels that allow for the looks' correlation"
            if design is not None
            else ""
        )
    )


def total_compute(results: StudyResults) -> str:
    """Every run this spec started, by status, and its train-minutes: failed and killed ones
    too; runs of a replaced spec under the same name are counted apart."""
    every = results.all_runs
    ours = every[every[names.OF_SPEC]] if names.OF_SPEC in every else every
    statuses = ours.groupby("status").size().to_dict() if not ours.empty else {}
    seconds = float(ours["train_seconds"].sum()) if not ours.empty else math.nan
    text = (
        f"{len(ours)} runs ("
        + ", ".join(f"{n} {s.lower()}" for s, n in sorted(statuses.items()))
        + f"), about {number(seconds / 60, 3)} train-minutes in all, failed and killed runs included"
    )
    others = every.drop(ours.index)
    if not others.empty:
        minutes = number(float(others["train_seconds"].sum()) / 60, 3)
        text += (
            f"; besides, {len(others)} run(s) of an earlier spec under this study's name "
            f"(about {minutes} train-minutes), which this analysis does not use"
        )
    return text


def unknown_fields(results: StudyResults) -> list[str]:
    """The provenance tags no run recorded (empty on every run)."""
    runs = results.runs
    return sorted(
        column
        for column in PROVENANCE_TAGS
        if not runs.empty and (runs[column].astype(str) == "").all()
    )


def checklist(results: StudyResults) -> list[tuple[str, str]]:
    """What a reader needs to judge and rerun the result; unknown fields are said to be."""
    unknown = unknown_fields(results)
    return [
        (
            "What varies between replicates",
            "the seed: it sets each arm's initialisation and the order of the training batches "
            "(separate generators), so for one seed every arm sees the same batches",
        ),
        (
            "Unit of analysis",
            "one run per arm and seed; arms compared paired by seed, never per step",
        ),
        ("Intervals", INTERVALS + (SEQUENTIAL_INTERVALS if results.design is not None else "")),
        ("Tests", tests_used(results)),
        (
            "Bands and ±",
            "accuracy curves: mean with a 95% bootstrap band; loss curves: ± 1 SD across seeds; "
            "tables: mean ± SD across seeds (SD, not SE)",
        ),
        (
            "Seeds per arm",
            ", ".join(f"{a}: {n}" for a, n in results.runs.groupby("arm").size().items()) or "none",
        ),
        ("Total compute", total_compute(results)),
        (
            "Dataset",
            provenance(results.spec.dataset, results.spec.dataset_sha256)
            if results.spec.dataset_sha256
            else f"{results.dataset_title}, checked against published checksums before training",
        ),
        ("Not filled in", ", ".join(unknown) if unknown else "nothing: every field above is known"),
    ]
