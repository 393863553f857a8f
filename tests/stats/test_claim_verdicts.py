"""ClaimVerdict: the decided table's rows as typed records and back, losing nothing."""

import dataclasses
import math

import pandas as pd
import pytest

from mnistlab.spec.study import Claim
from mnistlab.stats.analysis import paired_evidence
from mnistlab.stats.claim_verdicts import ClaimVerdict, claim_verdicts, verdicts_frame
from mnistlab.stats.decisions import compare_arms
from mnistlab.stats.sequential import SequentialDesign, sequential_decide
from mnistlab.stats.verdicts import Verdict
from tests.stats.test_decisions import tiny_table

CLAIMS = [Claim("test_accuracy", "higher", 0.05), Claim("test_loss", "either")]
TABLE = tiny_table(
    {
        "test_accuracy": [0.01 * (i + 1) for i in range(8)] + [0.0],
        "test_loss": [0.2, -0.1, 0.3, -0.2, 0.1, 0.0, -0.3, 0.4, 0.1],
    }
)


def test_a_fixed_studys_table_comes_back_unchanged_from_its_verdicts():
    decided = compare_arms(TABLE, "base", ["var"], CLAIMS)
    verdicts = claim_verdicts(decided)
    assert [v.verdict for v in verdicts] == [Verdict(v) for v in decided["verdict"]]
    first = verdicts[0]
    assert isinstance(first.verdict, Verdict) and type(first.n) is int and first.n == 9
    assert (first.wins, first.ties) == (8, 1)  # counted by hand from TABLE
    # Every field is there; the sequential ones say it was not decided at a look.
    assert first.look is None and math.isnan(first.p_sequential) and not first.sequential
    assert first.p_shown == first.p_holm
    pd.testing.assert_frame_equal(verdicts_frame(verdicts), decided)


def test_an_adaptive_studys_verdicts_carry_their_look_and_keep_its_columns():
    design = SequentialDesign(first=6, block=3, max_seeds=9, family=3)
    looks = [
        paired_evidence(TABLE[TABLE["seed"] < n], "base", ["var"], CLAIMS, 1 - level)
        for n, level in zip(design.looks(), design.nominal(), strict=True)
    ]
    decided = sequential_decide(looks, design)
    verdicts = claim_verdicts(decided)
    assert all(v.sequential and v.look in (1, 2) for v in verdicts)
    assert [v.p_shown for v in verdicts] == list(decided["p_sequential"])
    frame = verdicts_frame(verdicts)
    assert list(frame.columns) == list(decided.columns)
    pd.testing.assert_frame_equal(frame, decided, check_dtype=False)


def test_a_table_without_a_verdicts_column_is_refused_not_filled_in():
    decided = compare_arms(TABLE, "base", ["var"], CLAIMS).drop(columns="informative")
    with pytest.raises(KeyError, match="informative"):
        claim_verdicts(decided)


def test_no_verdicts_make_an_empty_table_and_a_verdict_is_frozen():
    assert verdicts_frame([]).empty and claim_verdicts(pd.DataFrame()) == ()
    (verdict, _) = claim_verdicts(compare_arms(TABLE, "base", ["var"], CLAIMS))
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.n = 3  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(ClaimVerdict)][-5:] == [
        "look",
        "seeds_at_look",
        "alpha_spent",
        "alpha_nominal",
        "p_sequential",
    ]


def test_no_verdicts_still_give_verdicts_csv_its_columns():
    import dataclasses

    from mnistlab.stats.claim_verdicts import SEQUENTIAL, ClaimVerdict, verdicts_frame

    empty = verdicts_frame([])
    assert empty.empty
    assert list(empty.columns) == [
        f.name for f in dataclasses.fields(ClaimVerdict) if f.name not in SEQUENTIAL
    ]
