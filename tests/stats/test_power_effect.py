"""Seeds for a given effect (`mnistlab power --effect`, a claim's `effect`), against statsmodels'
paired t-test power where the differences are normal; what is said when no number is known."""

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import TTestPower

from mnistlab.spec.parse import parse_spec, spec_from_record
from mnistlab.spec.record import to_record
from mnistlab.spec.run import ConfigError
from mnistlab.spec.study import Claim
from mnistlab.stats.power import detectable_note, seeds_for_effect, study_power


def test_seeds_for_an_effect_match_the_paired_t_test_on_normal_differences():
    # A large normal pilot stands for the normal itself; there the sign-flip test is as
    # powerful as the paired t-test, whose sample size statsmodels solves for.
    d = np.random.default_rng(2).normal(3.0, 1.0, size=2000)  # observed mean is irrelevant
    sd = d.std(ddof=1)
    for effect_sd, family in ((0.8, 1), (1.0, 3)):
        needed, power = seeds_for_effect(
            d, effect_sd * sd, family, tuple(range(5, 31)), simulations=2000
        )
        closed = TTestPower().solve_power(effect_sd, power=0.8, alpha=0.05 / family)
        assert abs(needed - math.ceil(closed)) <= 1, (effect_sd, family, needed, closed)
        # The curve itself, not just where it crosses 80%, from 12 seeds: below, the exact
        # test's discreteness (smallest p 2/2^n) costs power that the t-test does not lose.
        counts = np.arange(12, 31)
        expected = [TTestPower().power(effect_sd, n, 0.05 / family) for n in counts]
        assert power[7:] == pytest.approx(expected, abs=0.05)


def test_a_ratio_effect_is_a_log_ratio_and_a_claims_effect_is_used():
    rng = np.random.default_rng(4)
    ratios = np.exp(rng.normal(0.0, 0.02, size=40))
    rows = []
    for seed, r in enumerate(ratios):
        rows += [
            {"arm": "base", "seed": seed, "epoch_train_seconds": 10.0},
            {"arm": "var", "seed": seed, "epoch_train_seconds": 10.0 * r},
        ]
    table = pd.DataFrame(rows)
    claim = Claim("epoch_train_seconds", "higher", effect=1.02)
    frame, _ = study_power(table, "base", ["var"], [claim], 1, simulations=1000)
    (row,) = frame.itertuples()
    # 1.02 is log(1.02) / 0.02 ~ 1 SD of the log ratios: about 10 seeds for a paired t-test.
    closed = TTestPower().solve_power(
        math.log(1.02) / np.log(ratios).std(ddof=1), power=0.8, alpha=0.05
    )
    assert row.effect == 1.02 and abs(row.seeds_for_effect - math.ceil(closed)) <= 2
    # --effect (a dict by metric) takes precedence over the spec's
    frame, _ = study_power(
        table,
        "base",
        ["var"],
        [claim],
        1,
        simulations=500,
        effects={"epoch_train_seconds": 1.5},
    )
    (row,) = frame.itertuples()
    # A huge effect: the fewest seeds at which the exact test can reach p < 0.05 at all
    # (by hand: 2/2^5 = 0.0625, 2/2^6 = 0.031).
    assert row.effect == 1.5 and row.seeds_for_effect == 6


def test_detectable_now_is_never_nan_without_a_reason():
    rows = []
    for seed, d in enumerate([0.01, 0.02, 0.015]):
        rows += [
            {"arm": "base", "seed": seed, "test_accuracy": 0.9},
            {"arm": "var", "seed": seed, "test_accuracy": 0.9 + d},
        ]
    frame, _ = study_power(
        pd.DataFrame(rows),
        "base",
        ["var"],
        [Claim("test_accuracy", "higher")],
        3,
        simulations=200,
    )
    (row,) = frame.itertuples()
    assert math.isnan(row.detectable)
    # 2/2^3 = 0.25, times 3 tests: by hand, not below 0.05; 7 seeds needed (2/128*3 < 0.05).
    assert (
        row.detectable_note.startswith("none at n = 3") and "before 7 seeds" in row.detectable_note
    )
    assert "do not vary" in detectable_note(10, 0.0, 1)


def test_a_claims_effect_is_read_checked_and_stored():
    def spec(effect):
        return parse_spec(
            {
                "name": "p",
                "seeds": 3,
                "arms": {"a": {"model": "cnn2"}, "b": {"model": "cnn3"}},
                "claims": [{"metric": "seconds_per_step", "direction": "lower", "effect": effect}],
            },
            Path("p.toml"),
        )

    read = spec(0.95)
    assert read.claims[0].effect == 0.95
    assert spec_from_record(to_record(read)).claims == read.claims
    with pytest.raises(ConfigError, match=r"claims\[0\].effect"):
        spec(-1.0)


@pytest.mark.parametrize(
    ("metric", "effect", "phrase"),
    [
        ("test_accuracy", math.nan, "nan is not a finite number"),
        ("test_accuracy", math.inf, "inf is not a finite number"),
        ("test_accuracy", 0.0, "0 is no effect at all"),
        ("seconds_per_step", 0.0, "0 is not a ratio"),
        ("seconds_per_step", -1.05, "-1.05 is not a ratio"),
        ("seconds_per_step", 1.0, "1 is no effect at all"),
        ("test_accuracy", -5.0, "-5 cannot be a difference of test_accuracy"),
        ("test_accuracy", 1e9, "1e+09 cannot be a difference of test_accuracy"),
    ],
)
def test_an_effect_that_means_nothing_is_refused_with_the_fix(metric, effect, phrase):
    from mnistlab.spec.measures import effect_problem

    problem = effect_problem(metric, effect)
    assert problem is not None and problem.startswith(phrase)
    ratio = metric == "seconds_per_step"
    assert ("e.g. 1.05" if ratio else "e.g. 0.0") in problem
    assert effect_problem(metric, 1.05 if ratio else -0.005) is None
    with pytest.raises(ConfigError, match=r"claims\[0\].effect.*" + re.escape(phrase[:8])):
        parse_spec(
            {
                "name": "p",
                "seeds": 3,
                "arms": {"a": {"model": "cnn2"}, "b": {"model": "cnn3"}},
                "claims": [{"metric": metric, "direction": "lower", "effect": effect}],
            },
            Path("p.toml"),
        )
