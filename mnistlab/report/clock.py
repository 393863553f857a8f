"""The paper's question, which is about cost, answered in numbers: each arm's train seconds to
each threshold with their intervals, the paired time ratio where every run got there (bounds
where one did not), and accuracy after the same steps and at the same training seconds."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from mnistlab.report.conclusion import estimate_words, number
from mnistlab.results.evidence import StudyResults
from mnistlab.spec.measures import measure, percent


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


def seconds_words(row) -> str:  # noqa: ANN001 - a wall_clock row
    """One arm's train seconds to a threshold: '2.8 s [2.6, 3.3]' (median, 95% CI), with the
    runs that never got there said as such, never as a time."""
    if not math.isfinite(row.median_seconds):
        return f"did not get there on {row.not_reached} of {row.runs} seeds (median not reached)"
    high = "not reached" if math.isinf(row.high) else f"{number(row.high, 2)}"
    low = "–" if math.isinf(row.low) else f"{number(row.low, 2)}"
    text = f"{number(row.median_seconds, 2)} s [{low}, {high}] of training"
    if row.not_reached:
        text += f" (not reached on {row.not_reached} of {row.runs} seeds)"
    return text


def median_bounds(row) -> str:  # noqa: ANN001 - a censored comparisons row
    """What censored pairs still say about the median per-seed ratio: its bounds in words."""
    low, high = row.median_low, row.median_high
    low_known = math.isfinite(low) and low > 0
    if low_known and math.isfinite(high):
        if low == high:
            return f"the median per-seed ratio is {number(low, 3)}×"
        return f"the median per-seed ratio lies between {number(low, 3)}× and {number(high, 3)}×"
    if low_known:
        return f"the median per-seed ratio is at least {number(low, 3)}× (no upper bound)"
    if math.isfinite(high):
        return f"the median per-seed ratio is at most {number(high, 3)}×"
    return "the median per-seed ratio has no bound"


def clock_sentence(row, times: dict[str, object]) -> str:  # noqa: ANN001 - rows
    """The wall-clock answer at one threshold in numbers: each arm's median train seconds with
    its interval, then the paired time ratio and its test, or, where a run never got there, no
    ratio (a time that was never reached has nothing to divide) but the bounds that are known.

    row: a wall_clock_comparisons row; times: arm -> its wall_clock row at that threshold.
    """
    threshold = percent(measure(row.claim).threshold)
    variant, baseline = times[row.variant], times[row.baseline]
    arms = f"{row.variant} {seconds_words(variant)}, {row.baseline} {seconds_words(baseline)}"
    if any(math.isfinite(arm.median_seconds) for arm in (variant, baseline)):
        arms += " (medians, 95% CI)"
    outcome = {
        "pays": f"{row.variant} gets there sooner on the clock",
        "costs": f"{row.variant} needs more training time to get there",
        "unclear": "the clock cannot separate them",
    }[pays_for_itself(row)]
    if row.censored_pairs:
        return (
            f"To {threshold}: {arms}; no time ratio, since {row.censored_pairs} "
            f"of {row.n} pairs hold a run that never got there: {median_bounds(row)}, and a "
            "sign test that counts each pair of "
            f"unknown order against the result gives p = {number(row.p_value)} (descriptive), so "
            f"{outcome}."
        )
    return (
        f"To {threshold}: {arms}; {row.variant}/{row.baseline} "
        f"{estimate_words(row).removeprefix('ratio ')}, p = {number(row.p_value)} "
        f"(descriptive): {outcome}."
    )


def clock_sentences(results: StudyResults) -> list[str]:
    times = {(r.arm, r.threshold): r for r in results.wall_clock.itertuples()}
    sentences = []
    for row in results.wall_clock_comparisons.itertuples():
        threshold = measure(row.claim).threshold
        arms = {arm: times[(arm, threshold)] for arm in (row.variant, row.baseline)}
        sentences.append(clock_sentence(row, arms))
    return sentences


def points(value: float) -> str:
    """An accuracy difference (a fraction) in percentage points, signed: '−0.26'."""
    return f"{100 * value:+.2g}".replace("-", "−")


def budget_words(row) -> str:  # noqa: ANN001 - an equal_budget row
    """Accuracy at an equal training-time budget, in words, with its interval and the seeds."""
    budget = (
        f"at an equal training-time budget (each seed stopped where its quicker arm's run ended, "
        f"median {number(row.budget_seconds, 2)} s), {row.variant}'s accuracy on the evaluation "
        "subset is "
    )
    if row.tied == row.n:
        return budget + f"the same as {row.baseline}'s on all {row.n} seeds"
    way = "higher" if row.difference > 0 else "lower"
    interval = (
        f"95% CI [{points(row.ci_low)}, {points(row.ci_high)}] points"
        if math.isfinite(row.ci_low)
        else f"every seed {number(abs(100 * row.difference), 2)} points {way}"
    )
    return budget + (
        f"{number(abs(100 * row.difference), 2)} points {way} ({interval}, "
        f"p = {number(row.p_value, 2)}; {row.higher} seeds higher, {row.lower} lower, "
        f"{row.tied} tied)"
    )


def _threshold_verdicts(ours: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """The thresholds (as percents) where the variant pays for itself, costs, or is unclear."""
    verdicts = {
        t: pays_for_itself(row)
        for t, row in zip(
            (measure(c).threshold for c in ours["claim"]), ours.itertuples(), strict=True
        )
    }
    pays = [percent(t) for t, v in verdicts.items() if v == "pays"]
    costs = [percent(t) for t, v in verdicts.items() if v == "costs"]
    unclear = [percent(t) for t, v in verdicts.items() if v == "unclear"]
    return pays, costs, unclear


def _clock_sentence(variant: str, pays: list[str], costs: list[str], unclear: list[str]) -> str:
    """Where the variant pays for itself on the clock, where it costs, where it is unclear."""
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
    return "On wall-clock terms, " + "; ".join(parts) + "."


def _accuracy_sentence(variant: str, row: pd.Series, budget_row: Any) -> str:  # noqa: ANN401
    """The test accuracy difference after the same steps, then at the same training seconds."""
    return (
        f" After the same number of steps (the whole run), {variant}'s test accuracy is "
        f"{number(100 * abs(row['difference']), 3)} points "
        f"{'higher' if row['difference'] > 0 else 'lower'}"
        + (
            f" (95% CI [{points(row['ci_low'])}, {points(row['ci_high'])}] points, "
            if math.isfinite(row["ci_low"])
            else " (the same on every seed, "
        )
        + f"p = {number(row['p_value'])})"
        + (f"; {budget_words(budget_row)}." if budget_row is not None else ".")
    )


def _conclusion_sentence(
    pays: list[str],
    costs: list[str],
    more_accurate: bool,
    equal_time_known: bool,
    more_accurate_in_time: bool,
) -> str:
    """Whether the paper's conclusion follows, given what both comparisons say."""
    paper = "the paper's conclusion that a third convolution is 'not an effective way to improve the net'"
    if more_accurate and equal_time_known and not more_accurate_in_time:
        return (
            f" So {paper} depends on what is held equal: at equal steps it buys accuracy, at an "
            "equal training time it does not"
            + (f", though it reaches {', '.join(pays)} sooner" if pays else "")
            + (f"; nor does it buy speed to {', '.join(costs)}." if costs else ".")
        )
    if more_accurate:
        return (
            f" So {paper} does not follow: it buys accuracy"
            + (" at equal steps and at an equal training time" if more_accurate_in_time else "")
            + (f", though not speed to {', '.join(costs)}." if costs else ".")
        )
    if pays or more_accurate_in_time:
        return f" So {paper} does not follow: " + (
            f"the extra layer reaches {', '.join(pays)} sooner on the clock."
            if pays
            else "the extra layer is more accurate at an equal training time."
        )
    return (
        f" So {paper} follows within this protocol: the extra layer buys neither final "
        "accuracy nor time to any threshold."
    )


def papers_question(results: StudyResults) -> str:
    """The paper's question answered on wall-clock terms, for cnn3 against cnn2: time to each
    threshold, accuracy after the same steps and at the same training seconds, and the
    paper's conclusion judged by what both comparisons say."""
    variant = next(a for a in results.variants if results.spec.arm(a).model == "cnn3")
    comparisons = results.wall_clock_comparisons
    pays, costs, unclear = _threshold_verdicts(comparisons[comparisons["variant"] == variant])
    accuracy = results.secondary[
        (results.secondary["variant"] == variant)
        & (results.secondary["measure"] == "test_accuracy")
    ]
    # The interval inverts the test, so p < 0.05 with a positive mean is an interval above 0
    # (and holds too when every seed gained the same, where there is no interval).
    more_accurate = (
        not accuracy.empty
        and accuracy["difference"].iloc[0] > 0
        and accuracy["p_value"].iloc[0] < 0.05
    )
    budget = (
        results.equal_budget[results.equal_budget["variant"] == variant]
        if not results.equal_budget.empty
        else results.equal_budget
    )
    budget_row = next(budget.itertuples(), None)
    more_accurate_in_time = (
        budget_row is not None and budget_row.p_value < 0.05 and budget_row.difference > 0
    )
    text = _clock_sentence(variant, pays, costs, unclear)
    if not accuracy.empty:
        text += _accuracy_sentence(variant, accuracy.iloc[0], budget_row)
    return text + _conclusion_sentence(
        pays, costs, more_accurate, budget_row is not None, more_accurate_in_time
    )
