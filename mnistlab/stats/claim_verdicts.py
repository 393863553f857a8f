"""A verdict on one claim for one variant, as one frozen record with every field present.

A study's verdicts are decided as a table (decisions.decide, sequential.sequential_decide: one
row per variant x claim); claim_verdicts turns that table into ClaimVerdicts once, and every
front end (terminal, report, conclusion, MLflow) reads their attributes. verdicts_frame is the
way back to a table (verdicts.csv, `StudyResults.verdicts`), with the columns the table had.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mnistlab.stats.verdicts import Verdict

NAN = math.nan


@dataclass(frozen=True)
class ClaimVerdict:
    """One variant against the baseline on one claim: its paired evidence and its verdict.

    Estimates and intervals are on the claim's scale: a difference (variant - baseline), or
    for log-scale measures the ratio of geometric means (estimate_kind says which). A number
    that does not exist is NaN, never None: estimate and effect_size with censored pairs (the
    median's bounds are in median_low/high instead), an interval below 2 pairs or when every
    difference is equal (interval_note says so), p_value for an equivalence question (its only
    test is the TOST), and every equivalence number without a margin. The fields and their
    order are verdicts.csv's columns (analysis.paired_evidence documents each).
    """

    variant: str
    baseline: str
    claim: str  # the measure's name, e.g. 'steps_to:0.95'
    statement: str  # the claim in words, as asked of this variant
    metric: str  # the measure's column in the per-run table
    n: int  # paired seeds with a value for both arms
    baseline_mean: float
    variant_mean: float
    estimate_kind: str  # 'difference' or 'ratio'
    estimate: float
    ci_low: float
    ci_high: float
    confidence: float  # the interval's level: the level the decision used
    interval_note: str  # why there is no interval ('' when there is one)
    median_low: float  # censored pairs: bounds on the median difference (ratio); else NaN
    median_high: float
    p_value: float  # uncorrected, two-sided
    effect_size: float  # Cohen's d_z
    magnitude: str  # Cohen's word for |d_z| ('' when there is none)
    p_beats: float  # share of seeds on which the claim held (NaN without a direction)
    p_beats_low: float  # its 95% Wilson interval
    p_beats_high: float
    wins: int
    ties: int
    unknown_signs: int  # censored pairs whose sign the bounds do not decide
    beats_words: str  # '8 of 10 seeds, 2 tied' ('' without a direction)
    informative: int  # pairs that can move the exact test (not tied)
    censored_pairs: int  # pairs with a run that never reached the threshold
    test: str  # the test behind p_value, in words
    margin: float  # the claim's equivalence margin, NaN without one
    p_equivalence: float  # TOST: the larger of the two one-sided p-values
    p_tost_lower: float  # one-sided p that the difference is above -margin
    p_tost_upper: float  # one-sided p that the difference is below +margin
    ci90_low: float  # the interval TOST inverts, at equivalence_confidence
    ci90_high: float
    equivalence_confidence: float  # 1 - 2 (1 - confidence)
    direction: int  # +1 claimed higher, -1 lower, 0 either or equivalent
    question: str  # the claim's direction as asked: higher, lower, either, equivalent
    evidence: int  # the way the data point: +1, -1 or 0
    p_holm: float  # p_value, Holm-corrected over the study's family
    p_equivalence_holm: float  # p_equivalence, Holm-corrected in the same family
    verdict: Verdict
    note: str  # why the verdict is what it is, in words
    # Adaptive (sequential) studies only: the look that decided it (or the last look). A
    # fixed-seed study has None and NaN here, and its tables leave these columns out.
    look: int | None = None  # 1-based
    seeds_at_look: int | None = None
    alpha_spent: float = NAN
    alpha_nominal: float = NAN  # the level Holm divided at that look
    p_sequential: float = NAN  # p_holm scaled by alpha / alpha_nominal: compares with alpha

    @property
    def sequential(self) -> bool:
        """Whether it was decided at a look of an adaptive study."""
        return self.look is not None

    @property
    def p_shown(self) -> float:
        """The corrected p a reader compares with alpha: p_sequential at a look, else p_holm."""
        return self.p_sequential if self.sequential else self.p_holm

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ClaimVerdict:
        """From one row of a decided table (a dict of column -> value); KeyError names a
        column the table lacks. Values are made plain Python numbers and a Verdict."""
        values = {}
        for field in FIELDS:
            if field.name not in record and field.name in SEQUENTIAL:
                continue
            value = record[field.name]
            values[field.name] = _plain(field.name, value)
        return cls(**values)


FIELDS = dataclasses.fields(ClaimVerdict)
SEQUENTIAL = ("look", "seeds_at_look", "alpha_spent", "alpha_nominal", "p_sequential")
INTEGERS = frozenset(
    {"n", "wins", "ties", "unknown_signs", "informative", "censored_pairs", "direction"}
    | {"evidence", "look", "seeds_at_look"}
)
TEXTS = frozenset(f.name for f in FIELDS if f.type == "str")


def _plain(name: str, value: Any) -> Any:  # noqa: ANN401 - a table's cell
    """A cell as the field's type: numpy numbers become int / float, the verdict a Verdict."""
    if name == "verdict":
        return Verdict(value)
    if name in TEXTS:
        return str(value)
    if name in INTEGERS:
        return int(value)
    return float(value)


def claim_verdicts(decided: pd.DataFrame) -> tuple[ClaimVerdict, ...]:
    """A decided table's rows as ClaimVerdicts, in its order (empty for an empty table)."""
    return tuple(ClaimVerdict.from_record(record) for record in decided.to_dict("records"))


def verdicts_frame(verdicts: Iterable[ClaimVerdict]) -> pd.DataFrame:
    """The verdicts as a table, one row per verdict, columns in field order: verdicts.csv.

    The sequential columns are left out when no verdict came from a look (a fixed-seed study,
    whose tables never had them); no verdicts give an empty table with the other columns (a
    verdicts.csv that still says what it would hold).
    """
    rows = [dataclasses.asdict(verdict) for verdict in verdicts]
    if not rows:
        fields = [f.name for f in dataclasses.fields(ClaimVerdict) if f.name not in SEQUENTIAL]
        return pd.DataFrame(columns=fields)
    frame = pd.DataFrame(rows)
    if rows and not any(row["look"] is not None for row in rows):
        frame = frame.drop(columns=list(SEQUENTIAL))
    return frame
