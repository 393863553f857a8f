"""Paired statistics and verdicts on hand-made per-run tables small enough to check by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from mnistlab import names
from mnistlab.spec.study import paper_claims
from mnistlab.stats.analysis import paired_test, paired_values, secondary_comparisons
from mnistlab.stats.decisions import (
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
    compare_arms,
    min_seeds_for_verdict,
)
from tests.conftest import holm_by_hand

STEPS_95 = names.threshold_column(names.STEPS_TO, 0.95)

PAPER = list(paper_claims(0.95))


def test_paired_test_on_all_positive_differences_is_exact():
    result = paired_test(np.array([1.0, 2, 3, 4, 5, 6]))
    assert result.n == 6 and result.mean_difference == 3.5
    assert result.p_value == pytest.approx(2 / 64)  # two extreme sign patterns out of 2**6
    assert result.ci_low > 0 and result.ci_high <= 6
    assert result.effect_size == pytest.approx(3.5 / np.std([1, 2, 3, 4, 5, 6], ddof=1))


def test_paired_test_with_mixed_signs_and_with_constant_differences():
    assert paired_test(np.array([1.0, -2, 3, 4, 5, 6])).p_value == pytest.approx(6 / 64)
    constant = paired_test(np.array([2.0] * 7))
    # No [2, 2] "95% CI": what is known is that all 7 seeds are equal (issue #25, item 5).
    assert np.isnan(constant.ci_low) and np.isnan(constant.ci_high)
    assert constant.p_value == 2 / 128 and constant.interval_note.startswith("all 7 seeds equal")
    assert math.isnan(paired_test(np.array([1.0])).p_value)


def table_for(steps_2, steps_3, seconds_2, seconds_3, spread_2, spread_3) -> pd.DataFrame:
    rows = []
    for seed in range(len(steps_2)):
        for arm, steps, seconds, spread in (
            ("cnn2", steps_2, seconds_2, spread_2),
            ("cnn3", steps_3, seconds_3, spread_3),
        ):
            rows.append(
                {
                    "arm": arm,
                    "seed": seed,
                    STEPS_95: steps[seed],
                    "epoch_train_seconds": seconds[seed],
                    "log_loss_spread": spread[seed],
                }
            )
    return pd.DataFrame(rows)


def test_verdicts_follow_the_sign_and_the_holm_corrected_p():
    n = 8
    table = table_for(
        steps_2=[400] * n,
        steps_3=[300, 250, 350, 300, 200, 300, 250, 350],  # fewer: supported
        seconds_2=[20.0] * n,
        seconds_3=[15.0, 16, 14, 15, 15, 16, 14, 15],  # faster: contradicted
        spread_2=[0.2] * n,
        spread_3=[0.25, 0.15, 0.2, 0.21, 0.19, 0.2, 0.22, 0.18],  # no effect
    )
    verdicts = compare_arms(table, "cnn2", ["cnn3"], PAPER).set_index("claim")
    assert verdicts.loc["steps_to:0.95", "verdict"] == SUPPORTED
    assert verdicts.loc["epoch_train_seconds", "verdict"] == CONTRADICTED
    assert verdicts.loc["epoch_train_seconds", "estimate"] == pytest.approx(0.75, rel=0.02)
    assert verdicts.loc["log_loss_spread", "verdict"] == INCONCLUSIVE
    assert (verdicts["p_holm"] >= verdicts["p_value"]).all()
    assert verdicts.loc["steps_to:0.95", "p_value"] == pytest.approx(2 / 256)
    assert (verdicts["n"] == n).all()


def test_too_few_seeds_are_inconclusive_and_say_why():
    table = table_for([400] * 3, [300] * 3, [20.0] * 3, [30.0] * 3, [0.2] * 3, [0.3] * 3)
    verdicts = compare_arms(table, "cnn2", ["cnn3"], PAPER)
    assert set(verdicts["verdict"]) == {INCONCLUSIVE}
    assert verdicts["note"].str.contains("only 3 paired seed").all()


def test_pairs_use_only_seeds_that_both_models_have():
    table = table_for([1, 2, 3], [4, 5, 6], [1] * 3, [1] * 3, [1] * 3, [1] * 3)
    table = table[~((table["arm"] == "cnn3") & (table["seed"] == 1))]
    pairs = paired_values(table, "steps_to_0.95", "cnn2", "cnn3")
    assert pairs["seed"].tolist() == [0, 2] and pairs["variant"].tolist() == [4, 6]


def test_secondary_comparisons_are_paired_differences_without_correction():
    table = table_for([1] * 6, [1] * 6, [1] * 6, [1] * 6, [0.2] * 6, [0.3] * 6)
    table["raw_loss_sd"] = [0.07, 0.06] * 6  # cnn2 0.07, cnn3 0.06 for every seed
    frame = secondary_comparisons(table, "cnn2", "cnn3", {"raw_loss_sd": "raw", "nope": "x"})
    (row,) = frame.itertuples()
    assert (row.measure, row.n) == ("raw_loss_sd", 6)
    assert row.difference == pytest.approx(-0.01) and row.p_value == pytest.approx(2 / 64)


@pytest.mark.parametrize(("family", "by_hand"), [(1, 6), (3, 7), (4, 8), (6, 8), (12, 9)])
def test_min_seeds_follow_from_the_family_size(family, by_hand):
    # By hand: the smallest n with 2 / 2**n * m < 0.05. Independently: the exact test's own
    # smallest p on n all-positive differences, times the family size.
    assert min_seeds_for_verdict(family) == by_hand
    smallest = [paired_test(np.arange(1.0, n + 1)).p_value * family for n in (by_hand - 1, by_hand)]
    assert smallest[0] >= 0.05 > smallest[1]


def test_holm_runs_over_every_variant_and_claim_together():
    n = 9
    rng = np.random.default_rng(3)
    rows = []
    for seed in range(n):
        for arm, shift in (("base", 0.0), ("a", 0.5), ("b", 0.05)):
            rows.append(
                {
                    "arm": arm,
                    "seed": seed,
                    STEPS_95: 300 - 100 * shift + rng.normal(0, 20),
                    "epoch_train_seconds": 10 * (1 + shift) + rng.normal(0, 0.3),
                    "log_loss_spread": 0.7 + shift / 5 + rng.normal(0, 0.02),
                }
            )
    verdicts = compare_arms(pd.DataFrame(rows), "base", ["a", "b"], PAPER)
    assert len(verdicts) == 6 and verdicts["variant"].tolist() == ["a"] * 3 + ["b"] * 3
    assert verdicts["p_holm"].tolist() == pytest.approx(holm_by_hand(verdicts["p_value"].tolist()))
    # Corrected per variant alone, b's p-values would be smaller: the family is all six.
    alone = compare_arms(pd.DataFrame(rows), "base", ["b"], PAPER)
    assert (alone["p_holm"].to_numpy() <= verdicts["p_holm"].to_numpy()[3:]).all()
