"""From paired evidence to a verdict per claim: Holm over the family, the fewest seeds a
verdict needs, and the verdict with its note, as the claim's question was asked.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mnistlab.spec.measures import EITHER, SAME
from mnistlab.stats.analysis import ClaimLike, paired_evidence
from mnistlab.stats.multiplicity import holm, hypotheses
from mnistlab.stats.signflip import can_decide, smallest_p_words
from mnistlab.stats.verdicts import Verdict

ALPHA = 0.05


SUPPORTED, CONTRADICTED, INCONCLUSIVE = (
    Verdict.SUPPORTED,
    Verdict.CONTRADICTED,
    Verdict.INCONCLUSIVE,
)


EQUIVALENT = Verdict.EQUIVALENT


def min_seeds_for_verdict(family_size: int, alpha: float = ALPHA) -> int:
    """Fewest paired seeds at which any verdict is possible.

    An exact two-sided sign-flip test on n pairs cannot go below 2 / 2**n, and Holm multiplies
    the smallest of m p-values by m: a verdict needs 2 / 2**n * m < alpha.
    """
    if alpha <= 0:
        raise ValueError(f"no number of seeds reaches a verdict at alpha = {alpha}")
    n = 1
    while not can_decide(n, family_size, alpha):
        n += 1
    return n


def decide(frame: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Holm over every hypothesis in the frame together, then a verdict per row."""
    frame = frame.copy()
    if frame.empty:
        return frame
    both = holm(np.concatenate([frame["p_value"], frame["p_equivalence"]]))
    frame["p_holm"], frame["p_equivalence_holm"] = both[: len(frame)], both[len(frame) :]
    family = max(len(frame), hypotheses(frame))
    min_seeds = min_seeds_for_verdict(family, alpha)
    verdicts = [verdict(row, alpha, min_seeds, family) for row in frame.itertuples()]
    frame["verdict"] = [v for v, _ in verdicts]
    frame["note"] = [note for _, note in verdicts]
    return frame


def compare_arms(
    table: pd.DataFrame,
    baseline: str,
    variants: list[str],
    claims: list[ClaimLike],
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Verdict per (variant, claim) against the baseline, paired by seed.

    Holm's correction runs over the whole family (every variant x every claim, and an
    equivalence test for each claim with a margin), and no verdict is given below
    min_seeds_for_verdict(family size) paired seeds. Columns: those of paired_evidence,
    then p_holm, p_equivalence_holm, verdict and note.
    """
    return decide(paired_evidence(table, baseline, variants, claims), alpha)


OPEN = {EITHER: Verdict.NO_DIFFERENCE, SAME: Verdict.NOT_EQUIVALENT}  # else INCONCLUSIVE


def verdict(row, alpha: float, min_seeds: int, family_size: int) -> tuple[str, str]:  # noqa: ANN001 - a row of paired_evidence
    """The verdict as the claim's question was asked, from the Holm-corrected p-values.

    higher / lower: supported, contradicted or (with a margin) equivalent, else inconclusive.
    either: differs, else (with a margin) equivalent, else no difference shown.
    equivalent: equivalent (TOST inside the margin), else not shown equivalent.
    """
    still_open = OPEN.get(row.question, INCONCLUSIVE)
    within = not math.isnan(row.p_equivalence_holm) and row.p_equivalence_holm < alpha
    too_few = _too_few_seeds(row, alpha, min_seeds, family_size, within)
    if too_few:
        return still_open, too_few
    if row.question == SAME:
        return _equivalence_verdict(row, alpha, within, still_open)
    return _difference_verdict(row, alpha, within, still_open)


def _too_few_seeds(row, alpha: float, min_seeds: int, family_size: int, within: bool) -> str:  # noqa: ANN001 - a row of paired_evidence
    """Why no verdict can be reached on these seeds ('' when one can): none measured, fewer
    than min_seeds, or too many of them tied to move an exact test."""
    if row.n == 0:
        return "not measurable on these runs (too few steps, or never evaluated)"
    if row.n < min_seeds:
        return (
            f"only {row.n} paired seed(s): with {family_size} test(s) under Holm, an exact "
            f"paired test needs at least {min_seeds} to reach a verdict at {alpha:.3g}"
        )
    informative = int(row.informative)
    if informative < min_seeds and not within and row.question != SAME:
        tied = row.n - informative
        return (
            f"{row.n} paired seeds, {tied} of them tied: ties do not move an exact test, so "
            f"{smallest_p_words(informative)}, and with {family_size} "
            f"test(s) under Holm it cannot get below {alpha:.3g}; a verdict needs "
            f"{min_seeds - informative} more untied seed(s)"
        )
    return ""


def _as_ratio(row) -> str:  # noqa: ANN001 - a row of paired_evidence
    return " (as a ratio)" if row.estimate_kind == "ratio" else ""


def _within_margin_note(row) -> str:  # noqa: ANN001 - a row of paired_evidence
    return (
        f"two one-sided tests put the difference within the margin ±{row.margin:g}"
        + _as_ratio(row)
        + f", Holm-corrected p = {row.p_equivalence_holm:.3g}"
    )


def _equivalence_verdict(row, alpha: float, within: bool, still_open: str) -> tuple[str, str]:  # noqa: ANN001 - a row of paired_evidence
    """An equivalence question's verdict: its only test is the TOST."""
    if within:
        return EQUIVALENT, _within_margin_note(row)
    if row.censored_pairs:
        return still_open, (
            f"{row.censored_pairs} of {row.n} pairs censored: a run that never reached the "
            "threshold has no value to put inside a margin, so equivalence cannot be tested"
        )
    return still_open, (
        f"two one-sided tests do not put the difference within ±{row.margin:g}"
        + _as_ratio(row)
        + f": Holm-corrected p = {row.p_equivalence_holm:.3g} is not below {alpha:.3g}"
    )


def _difference_verdict(row, alpha: float, within: bool, still_open: str) -> tuple[str, str]:  # noqa: ANN001 - a row of paired_evidence
    """A higher, lower or either question's verdict: the difference test, then the TOST."""
    censored = (
        f"; {row.censored_pairs} of {row.n} pairs censored, each of unknown sign counted "
        "against the verdict"
        if row.censored_pairs
        else ""
    )
    if row.p_holm < alpha:
        if row.question == EITHER:
            way = "higher" if row.evidence > 0 else "lower"
            return Verdict.DIFFERS, (
                f"two-sided Holm-corrected p = {row.p_holm:.3g}; the variant's value is {way}"
                + censored
            )
        practically = ", though it lies within the margin (practically equivalent)"
        if row.evidence == row.direction:
            note = "the difference goes the way the claim says"
            return SUPPORTED, note + (practically if within else "") + censored
        note = "the difference is significant but opposite to the claim"
        return CONTRADICTED, note + (practically if within else "") + censored
    if within:
        return EQUIVALENT, _within_margin_note(row)
    return still_open, (f"Holm-corrected p = {row.p_holm:.3g} is not below {alpha:.3g}" + censored)
