"""The answer in words, generated from the numbers: what each verdict means, what the arms
cost on the clock, the paper's own question, and the reproducibility checklist."""

from __future__ import annotations

import math

from mnistlab import names
from mnistlab.report.tables import (
    equivalence_level,
    estimate_text,
    interval_text,
    level,
    margin_words,
)
from mnistlab.results.evidence import StudyResults
from mnistlab.spec.measures import measure, percent
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


def estimate_words(row) -> str:  # noqa: ANN001 - a verdicts row
    """'ratio 1.2×, 95% CI [1.03×, 1.44×]' at the level the interval has; for censored pairs
    the bounds on the median and the interval that allows for them; 'all 7 seeds equal'."""
    confidence = getattr(row, "confidence", 0.95)
    interval = interval_text(row)
    if not interval.startswith("["):
        return f"{estimate_text(row)} ({interval})"
    kind = "CI for the median" if getattr(row, "censored_pairs", 0) else "CI"
    return f"{estimate_text(row)}, {level(confidence)} {kind} {interval}"


def interval90(row) -> str:  # noqa: ANN001 - a verdicts row
    unit = "×" if row.estimate_kind == "ratio" else ""
    return (
        f"{equivalence_level(row)} CI [{number(row.ci90_low, 4)}{unit}, "
        f"{number(row.ci90_high, 4)}{unit}]"
    )


def verdict_sentence(row) -> tuple[Verdict, str]:  # noqa: ANN001 - a verdicts row
    """(verdict, sentence) of one claim and variant; every Verdict has its wording."""
    verdict = Verdict(row.verdict)
    dz = (
        f"d_z = {number(row.effect_size, 2)}, a {row.magnitude or 'unmeasured'} effect"
        if math.isfinite(getattr(row, "effect_size", math.nan))
        else "no d_z: censored runs have no value to average"
    )
    holds = getattr(row, "beats_words", "") or f"{number(100 * row.p_beats, 3)}% of seeds"
    effect = (
        f"the claim holds on {holds}; {dz}"
        if isinstance(row.p_beats, float) and math.isfinite(row.p_beats)
        else dz
    )
    look = (
        f" (decided at look {row.look}, {row.seeds_at_look} seeds)"
        if "look" in row._fields and verdict.decided
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
    return verdict, text


def verdict_sentences(results: StudyResults) -> list[tuple[Verdict, str]]:
    """(verdict, sentence) per claim and variant."""
    return [verdict_sentence(row) for row in results.verdicts.itertuples()]


def clock_rows(results: StudyResults) -> list[dict[str, str]]:
    rows = []
    for row in results.wall_clock.itertuples():
        rows.append(
            {
                "arm": row.arm,
                "threshold": percent(row.threshold),
                "median": number(row.median_seconds),
                "interval": f"[{number(row.low)}, {number(row.high)}]",
                "steps": number(row.median_steps, 4),
                "not_reached": f"{row.not_reached} of {row.runs}",
            }
        )
    return rows


def pays_for_itself(row) -> str:  # noqa: ANN001 - a wall_clock_comparisons row
    """'pays', 'costs' or 'unclear': does the variant reach the threshold sooner on the clock?"""
    if row.p_value < 0.05 and row.evidence < 0:
        return "pays"
    if row.p_value < 0.05 and row.evidence > 0:
        return "costs"
    return "unclear"


def clock_sentences(results: StudyResults) -> list[str]:
    sentences = []
    for row in results.wall_clock_comparisons.itertuples():
        threshold = percent(measure(row.claim).threshold)
        censored = (
            f" ({row.censored_pairs} of {row.n} pairs censored: a run that never got there)"
            if row.censored_pairs
            else ""
        )
        outcome = {
            "pays": f"{row.variant} gets there sooner on the clock",
            "costs": f"{row.variant} needs more train time to get there",
            "unclear": "the clock cannot separate them",
        }[pays_for_itself(row)]
        sentences.append(
            f"To {threshold}: {outcome}; time ratio {row.variant}/{row.baseline}: "
            f"{estimate_words(row).removeprefix('ratio ')}, "
            f"p = {number(row.p_value)} (descriptive){censored}."
        )
    return sentences


def papers_question(results: StudyResults) -> str:
    """The paper's question answered on wall-clock terms, for cnn3 against cnn2."""
    variant = next(a for a in results.variants if results.spec.arm(a).model == "cnn3")
    comparisons = results.wall_clock_comparisons
    ours = comparisons[comparisons["variant"] == variant]
    verdicts = {
        t: pays_for_itself(row)
        for t, row in zip(
            (measure(c).threshold for c in ours["claim"]), ours.itertuples(), strict=True
        )
    }
    pays = [percent(t) for t, v in verdicts.items() if v == "pays"]
    costs = [percent(t) for t, v in verdicts.items() if v == "costs"]
    unclear = [percent(t) for t, v in verdicts.items() if v == "unclear"]
    accuracy = results.secondary[
        (results.secondary["variant"] == variant)
        & (results.secondary["measure"] == names.TEST_ACCURACY)
    ]
    more_accurate = (
        not accuracy.empty and accuracy["ci_low"].iloc[0] > 0 and accuracy["p_value"].iloc[0] < 0.05
    )
    parts = []
    if pays:
        parts.append(f"the third convolution pays for itself on the clock at {', '.join(pays)}")
    if costs:
        parts.append(
            f"{variant}'s fewer steps do not outweigh its slower steps at {', '.join(costs)}, "
            "where it needs more training seconds"
        )
    if unclear:
        parts.append(f"at {', '.join(unclear)} the clock cannot tell them apart")
    text = "On wall-clock terms, " + "; ".join(parts) + "."
    if not accuracy.empty:
        row = accuracy.iloc[0]
        text += (
            f" After the whole budget, {variant}'s test accuracy is "
            f"{number(100 * row['difference'], 3)} points {'higher' if row['difference'] > 0 else 'lower'}"
            f" (95% CI [{number(100 * row['ci_low'], 3)}, {number(100 * row['ci_high'], 3)}] points, "
            f"p = {number(row['p_value'])})."
        )
    if more_accurate:
        text += (
            " The paper's conclusion that a third convolution is 'not an effective way to improve "
            "the net' does not follow: it buys accuracy"
            + (f", though not speed to {', '.join(costs)}." if costs else ".")
        )
    elif pays:
        text += (
            " The paper's conclusion does not follow: the extra layer reaches some accuracy sooner."
        )
    else:
        text += (
            " The paper's conclusion follows within this protocol: the extra layer buys neither "
            "final accuracy nor time to any threshold."
        )
    return text


def checklist(results: StudyResults) -> list[tuple[str, str]]:
    """What a reader needs to judge and rerun the result; unknown fields are said to be."""
    runs, all_runs = results.runs, results.all_runs
    statuses = all_runs.groupby("status").size().to_dict() if not all_runs.empty else {}
    seconds = float(all_runs["train_seconds"].sum()) if not all_runs.empty else math.nan
    design = results.design
    interval = (
        "95% interval of the mean per-seed difference (log ratio for ratios) that inverts the "
        "exact sign-flip test: the shifts it does not reject, so it excludes 0 exactly when "
        "p < 0.05; equivalence intervals at 1 - 2 alpha invert the two one-sided tests; with "
        "censored pairs, an order-statistic interval of the median widened to the censoring "
        "bounds"
    )
    if design is not None:
        interval += (
            "; in this sequential study, at the confidence 1 - alpha spent at the deciding look"
        )
    unknown = sorted(
        column
        for column in ("cpu", "device", "git_commit", "torch_version", "mlflow_version", "threads")
        if not runs.empty and (runs[column].astype(str) == "").all()
    )
    items = [
        (
            "What varies between replicates",
            "the seed: it sets each arm's initialisation and the order of the training batches "
            "(separate generators), so for one seed every arm sees the same batches",
        ),
        (
            "Unit of analysis",
            "one run per arm and seed; arms compared paired by seed, never per step",
        ),
        ("Intervals", interval),
        (
            "Tests",
            "exact two-sided sign-flip permutation test (all 2^n sign patterns up to 16 seeds, "
            "100,000 seeded random ones above); exact sign test where censored pairs exist; "
            f"two one-sided tests for margins; Holm over {results.family_size} test(s)"
            + (
                f"; group-sequential, {len(design.looks())} planned looks at "
                f"{', '.join(map(str, design.looks()))} seeds, Pocock-type alpha spending"
                if design is not None
                else ""
            ),
        ),
        (
            "Bands and ±",
            "accuracy curves: mean with a 95% bootstrap band; loss curves: ± 1 SD across seeds; "
            "tables: mean ± SD across seeds (SD, not SE)",
        ),
        (
            "Seeds per arm",
            ", ".join(f"{a}: {n}" for a, n in runs.groupby("arm").size().items()) or "none",
        ),
        (
            "Total compute",
            f"{len(all_runs)} runs ("
            + ", ".join(f"{n} {s.lower()}" for s, n in sorted(statuses.items()))
            + f"), about {number(seconds / 60, 3)} train-minutes in all, failed and killed runs included",
        ),
        (
            "Dataset",
            provenance(results.spec.dataset, results.spec.dataset_sha256)
            if results.spec.dataset_sha256
            else f"{results.dataset_title}, checked against published checksums before training",
        ),
        ("Not filled in", ", ".join(unknown) if unknown else "nothing: every field above is known"),
    ]
    return items
