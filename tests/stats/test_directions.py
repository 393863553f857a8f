"""Two-sided ('either') and equivalence ('equivalent') claims, each statistic checked against
scipy / statsmodels or by hand on tiny data built here."""

from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from mnistlab.report.tables import verdict_rows
from mnistlab.spec.parse import parse_spec, spec_from_record
from mnistlab.spec.record import to_record
from mnistlab.spec.run import ConfigError
from mnistlab.spec.study import Claim
from mnistlab.stats.claim_verdicts import ClaimVerdict
from mnistlab.stats.decisions import compare_arms
from mnistlab.stats.verdicts import Verdict
from tests.conftest import tiny_table


def mean_statistic(x, axis):
    return np.mean(x, axis=axis)


def scipy_sign_flip(d: np.ndarray, alternative: str) -> float:
    return stats.permutation_test(
        (d,),
        mean_statistic,
        permutation_type="samples",
        alternative=alternative,
        n_resamples=np.inf,
    ).pvalue


def test_either_is_a_two_sided_exact_test_that_reads_differs_or_no_difference_shown():
    d = [0.01, 0.02, 0.015, 0.03, 0.01, 0.02, 0.025, 0.012]
    (row,) = compare_arms(
        tiny_table({"test_accuracy": d}), "base", ["var"], [Claim("test_accuracy", "either")]
    ).itertuples()
    assert row.verdict == Verdict.DIFFERS and "higher" in row.note
    assert row.p_value == pytest.approx(2 / 2**8)  # by hand: two of 256 patterns as extreme
    assert row.p_value == pytest.approx(scipy_sign_flip(np.array(d), "two-sided"))
    assert row.statement == "var differs from base in final test accuracy"
    mixed = [0.01, -0.02, 0.015, -0.03, 0.01, -0.02, 0.025, -0.012]
    (row,) = compare_arms(
        tiny_table({"test_accuracy": mixed}), "base", ["var"], [Claim("test_accuracy", "either")]
    ).itertuples()
    assert row.verdict == Verdict.NO_DIFFERENCE
    assert row.p_value == pytest.approx(scipy_sign_flip(np.array(mixed), "two-sided"))
    (shown,) = verdict_rows_of(row)
    assert shown["verdict"] == "no difference shown"


def verdict_rows_of(row):
    class Results:  # verdict_rows reads only .claim_verdicts
        claim_verdicts = (ClaimVerdict.from_record(row._asdict()),)

    return verdict_rows(Results)


def test_equivalent_runs_only_the_tost_and_reads_within_the_margin():
    close = [0.001, -0.002, 0.0, 0.001, -0.001, 0.002, 0.0, -0.001, 0.001, 0.0]
    table = tiny_table({"test_accuracy": close})
    (row,) = compare_arms(
        table, "base", ["var"], [Claim("test_accuracy", "equivalent", 0.003)]
    ).itertuples()
    d, m = np.array(close), 0.003
    assert np.isnan(row.p_value)  # no difference test in the family
    assert row.p_tost_lower == pytest.approx(scipy_sign_flip(d + m, "greater"))
    assert row.p_tost_upper == pytest.approx(scipy_sign_flip(d - m, "less"))
    assert row.p_equivalence == pytest.approx(1 / 2**10)  # every shifted value has one sign
    assert row.p_equivalence_holm == row.p_equivalence  # a family of one test
    assert row.verdict == Verdict.EQUIVALENT
    (shown,) = verdict_rows_of(row)
    assert shown["verdict"] == "equivalent within ±0.3 points"
    assert shown["p"] == shown["p_holm"] == "0.000977"
    assert "±0.3 points" in shown["equivalence"] and "90% CI" in shown["equivalence"]
    assert row.statement == "var and base have the same final test accuracy within ±0.3 points"
    # A margin narrower than the interval: not shown equivalent, with the interval that says why.
    (row,) = compare_arms(
        table, "base", ["var"], [Claim("test_accuracy", "equivalent", 0.0002)]
    ).itertuples()
    assert row.verdict == Verdict.NOT_EQUIVALENT
    (shown,) = verdict_rows_of(row)
    assert shown["verdict"].startswith("not shown equivalent within ±0.02 points (90% CI [")


def test_holm_runs_over_the_whole_family_of_mixed_questions():
    rng = np.random.default_rng(3)
    table = tiny_table(
        {
            "test_accuracy": list(0.01 + 0.002 * rng.standard_normal(9)),
            "log_loss_spread": list(0.002 * rng.standard_normal(9)),
            "final_train_loss": list(0.3 + 0.1 * rng.standard_normal(9)),
        }
    )
    claims = [
        Claim("test_accuracy", "higher"),
        Claim("log_loss_spread", "equivalent", 0.01),
        Claim("final_train_loss", "either", 1.2),
    ]
    frame = compare_arms(table, "base", ["var"], claims)
    p = np.concatenate([frame["p_value"], frame["p_equivalence"]])
    tested = ~np.isnan(p)
    assert tested.sum() == 4  # 2 difference tests, 2 TOSTs (log_loss_spread: TOST only)
    expected = multipletests(p[tested], method="holm")[1]
    ours = np.concatenate([frame["p_holm"], frame["p_equivalence_holm"]])[tested]
    assert ours == pytest.approx(expected)
    assert frame["verdict"].tolist() == [Verdict.SUPPORTED, Verdict.EQUIVALENT, Verdict.DIFFERS]


def spec_with(claim: dict):
    return parse_spec(
        {
            "name": "q",
            "seeds": 3,
            "arms": {"a": {"model": "cnn2"}, "b": {"model": "cnn3"}},
            "claims": [claim],
        },
        Path("q.toml"),
    )


def test_either_and_equivalent_are_valid_claims_and_equivalent_needs_a_margin():
    either = spec_with({"metric": "test_accuracy", "direction": "either"})
    same = spec_with({"metric": "test_accuracy", "direction": "equivalent", "margin": 0.003})
    for spec in (either, same):
        assert spec_from_record(to_record(spec)).claims == spec.claims
    with pytest.raises(ConfigError) as error:
        spec_with({"metric": "test_accuracy", "direction": "equivalent"})
    message = str(error.value)
    assert "q.toml" in message and "claims[0].margin" in message
    assert "is required with direction" in message and 'direction = "either"' in message
    with pytest.raises(ConfigError, match="Known: higher, lower, either, equivalent"):
        spec_with({"metric": "test_accuracy", "direction": "sideways"})
