"""A study's title and verdicts as rows of text: one wording for the terminal, the report and
MLflow. Light on purpose (no plotting, no torch): `mnistlab analyze` imports it.
"""

from __future__ import annotations

import numpy as np

from mnistlab.results.evidence import StudyResults
from mnistlab.spec.measures import SAME, measure
from mnistlab.stats.analysis import margin_words as margin_words_of
from mnistlab.stats.claim_verdicts import ClaimVerdict
from mnistlab.stats.verdicts import Verdict

PAPER_QUESTION = "Does a third convolution help?"


def asks_the_papers_question(results: StudyResults) -> bool:
    """True when the study sets the paper's cnn3 against its cnn2 (on any dataset)."""
    spec = results.spec
    models = {spec.arm(arm).model for arm in spec.variants}
    return spec.arm(spec.baseline).model == "cnn2" and "cnn3" in models


def title(results: StudyResults) -> str:
    if results.spec.question:
        return results.spec.question
    if asks_the_papers_question(results):
        return PAPER_QUESTION
    return f"{', '.join(results.spec.variants)} against {results.baseline}"


def format_number(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}"


def level(confidence: float) -> str:
    """A confidence level as a label: 0.95 -> '95%', 0.9843 -> '98.4%'."""
    if confidence is None or not np.isfinite(confidence):
        return "95%"
    return f"{100 * confidence:.3g}%"


def interval_text(row, digits: int = 4) -> str:  # noqa: ANN001 - a ClaimVerdict or evidence row
    """The interval as shown, labelled with its level: '[a, b]', or what is known instead."""
    note = row.interval_note
    if note and "all" in note and "equal" in note:
        return note.split(":")[0]  # 'all 7 seeds equal'
    unit = "×" if row.estimate_kind == "ratio" else ""

    def end(value: float) -> str:
        if np.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{format_number(value, digits)}{unit}"

    return f"[{end(row.ci_low)}, {end(row.ci_high)}]"


def estimate_text(row, digits: int = 4) -> str:  # noqa: ANN001 - a ClaimVerdict or evidence row
    """'ratio 1.2×', or for censored pairs the bounds on the median: 'median ratio 1.1× to
    not reached'."""
    unit = "×" if row.estimate_kind == "ratio" else ""
    if row.censored_pairs and not np.isfinite(row.estimate):
        low, high = row.median_low, row.median_high

        def bound(value: float) -> str:
            if np.isinf(value):
                return "not reached" if value > 0 else "unbounded below"
            return f"{format_number(value, digits)}{unit}"

        median = bound(low) if low == high else (f"between {bound(low)} and {bound(high)}")
        return f"median {row.estimate_kind} {median} ({row.censored_pairs} censored)"
    return f"{row.estimate_kind} {format_number(row.estimate, digits)}{unit}"


def verdict_rows(results: StudyResults) -> list[dict[str, str]]:
    rows = []
    for row in results.claim_verdicts:
        same = row.question == SAME
        rows.append(
            {
                "variant": row.variant,
                "statement": row.statement,
                "n": str(row.n),
                "means": f"{format_number(row.baseline_mean, 4)} vs {format_number(row.variant_mean, 4)}",
                "estimate": estimate_text(row),
                "interval": f"{level(row.confidence)} {interval_text(row)}",
                # An equivalence question's only test is its TOST.
                "p": format_number(row.p_equivalence if same else row.p_value),
                "p_holm": format_number(row.p_equivalence_holm if same else row.p_shown),
                "effect": f"{format_number(row.effect_size, 2)} ({row.magnitude})",
                "beats": f"{row.beats_words or f'{row.p_beats:.0%}'} "
                f"[{row.p_beats_low:.0%}, {row.p_beats_high:.0%}]"
                if np.isfinite(row.p_beats)
                else "–",
                "look": str(row.look) if row.sequential else "",
                "verdict": reading(row),
                "tone": row.verdict.tone,
                "equivalence": equivalence_cell(row),
                "note": row.note,
            }
        )
    return rows


def margin_text(claim) -> str:  # noqa: ANN001 - a config.Claim
    """A claim's margin in words ('' without one)."""
    return margin_words_of(claim.measure, claim.margin)


def margin_words(row: ClaimVerdict) -> str:
    """The margin of a verdict in words ('' without one)."""
    if not np.isfinite(row.margin):
        return ""
    return margin_words_of(measure(row.claim), row.margin)


def reading(row: ClaimVerdict) -> str:
    """The verdict as the question was asked: 'equivalent within ±0.3 points', 'not shown
    equivalent within ±0.3 points (90% CI [..])', 'differs', 'no difference shown'."""
    verdict = Verdict(row.verdict)
    margin = margin_words(row)
    if verdict == Verdict.EQUIVALENT and margin:
        return f"{verdict} within {margin}"
    if verdict == Verdict.NOT_EQUIVALENT and margin:
        unit = "×" if row.estimate_kind == "ratio" else ""
        return (
            f"{verdict} within {margin} ({equivalence_level(row)} CI "
            f"[{format_number(row.ci90_low, 4)}{unit}, {format_number(row.ci90_high, 4)}{unit}])"
        )
    return str(verdict)


def equivalence_level(row) -> str:  # noqa: ANN001 - a ClaimVerdict or evidence row
    """The level of the interval TOST inverts: 1 - 2 alpha at the alpha the decision used."""
    return level(row.equivalence_confidence)


def equivalence_cell(row: ClaimVerdict) -> str:
    """Margin, the two TOST p-values and the 1 - 2 alpha interval; '' without a margin."""
    margin = margin_words(row)
    if not margin:
        return ""
    lower, upper = row.p_tost_lower, row.p_tost_upper
    unit = "×" if row.estimate_kind == "ratio" else ""
    return (
        f"{margin}; TOST p {format_number(lower)} (above −m), {format_number(upper)} (below +m), "
        f"Holm {format_number(row.p_equivalence_holm)}; {equivalence_level(row)} CI "
        f"[{format_number(row.ci90_low, 4)}{unit}, {format_number(row.ci90_high, 4)}{unit}]"
    )
