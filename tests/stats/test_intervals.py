"""Issue #25: intervals that agree with their tests, and honest numbers from censored, tied
and adaptive data. Each statistic against a computation written another way."""

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from mnistlab import names
from mnistlab.report.conclusion import estimate_words, interval90, verdict_sentence
from mnistlab.report.tables import reading
from mnistlab.spec.study import Claim
from mnistlab.stats.analysis import paired_evidence, paired_test, tost
from mnistlab.stats.censored import censored_signs
from mnistlab.stats.claim_verdicts import ClaimVerdict
from mnistlab.stats.decisions import SUPPORTED, compare_arms
from mnistlab.stats.sequential import SequentialDesign, sequential_decide, simulated_evidence
from mnistlab.stats.signflip import STUDY_PATTERNS, sign_flip_interval, sign_flip_p
from tests.stats.test_decisions import tiny_table

STEPS_90 = names.threshold_column(names.STEPS_TO, 0.9)
REACHED_90 = names.threshold_column(names.REACHED, 0.9)


def brute_interval(d: np.ndarray, confidence: float) -> tuple[float, float]:
    """The accepted shifts by enumeration: every subset mean a candidate end, every p from
    all 2**n sign patterns summed in Python."""
    n, alpha = len(d), 1 - confidence
    values = d.tolist()
    candidates = sorted(
        {sum(c) / k for k in range(1, n + 1) for c in itertools.combinations(values, k)}
    )
    patterns = list(itertools.product((1.0, -1.0), repeat=n))

    def accepted(delta: float) -> bool:
        y = [v - delta for v in values]
        observed = sum(y)
        sums = [sum(s * v for s, v in zip(p, y, strict=True)) for p in patterns]
        tol = 1e-9 * max(1.0, abs(observed))
        up = sum(x >= observed - tol for x in sums) / len(patterns)
        down = sum(x <= observed + tol for x in sums) / len(patterns)
        return min(1.0, 2 * min(up, down)) >= alpha

    inside = [c for c in candidates if accepted(c)]
    low = min(inside) if not accepted(min(candidates) - 1) else -math.inf
    high = max(inside) if not accepted(max(candidates) + 1) else math.inf
    return low, high


@pytest.mark.parametrize("n", [4, 6, 9])
@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.985])
def test_the_inverted_interval_matches_enumeration(n, confidence):
    rng = np.random.default_rng(n)
    for d in (rng.standard_t(3, n) + 0.4, np.round(rng.normal(1, 2, n))):
        assert sign_flip_interval(d, confidence) == pytest.approx(brute_interval(d, confidence))


@pytest.mark.parametrize("n", [5, 8, 10, 15, 20])
def test_the_interval_excludes_zero_exactly_when_the_test_rejects(n):
    rng = np.random.default_rng(100 + n)
    samples = 60 if n > 16 else 120
    kinds = [
        rng.normal(0.3, 1, (samples, n)),
        rng.standard_t(3, (samples, n)),
        rng.exponential(1, (samples, n)) - 0.7,
        np.where(rng.uniform(size=(samples, n)) < 0.1, 10.0, 1.0)
        * rng.normal(0.2, 1, (samples, n)),
        np.round(rng.normal(0.5, 1.5, (samples, n))),  # ties, and zero differences
    ]
    for d in np.concatenate(kinds):
        if np.ptp(d) == 0:
            continue
        test = paired_test(d)
        excludes = not (test.ci_low <= 0 <= test.ci_high)
        assert excludes == (test.p_value < 0.05), (d, test)


def test_censored_tie_has_the_sign_the_bound_gives():
    # Baseline censored at step 300 (never reached by then); the variant reached at 300: the
    # baseline is known to be slower, so variant - baseline < 0. And the mirror case.
    pairs = pd.DataFrame({"baseline": [300.0, 200.0], "variant": [300.0, 200.0]})
    reached = pd.DataFrame({"baseline": [False, True], "variant": [True, False]})
    assert censored_signs(pairs, reached).tolist() == [-1.0, 1.0]
    rows = []
    for seed in range(7):  # 6 clear wins and the censored tie: 7 of 7, p = 2/128
        base, reached_base = (500, False) if seed == 6 else (1000, True)
        rows.append({"arm": "b", "seed": seed, STEPS_90: base, REACHED_90: reached_base})
        rows.append({"arm": "v", "seed": seed, STEPS_90: 500, REACHED_90: True})
    (row,) = compare_arms(
        pd.DataFrame(rows), "b", ["v"], [Claim("steps_to:0.9", "lower")]
    ).itertuples()
    assert row.p_value == pytest.approx(2 / 2**7) and row.verdict == SUPPORTED
    assert row.wins == 7 and row.ties == 0


def test_ties_are_counted_as_ties_not_half_wins():
    table = tiny_table({"test_accuracy": [0.01 * (i + 1) for i in range(8)] + [0.0, 0.0]})
    (row,) = compare_arms(table, "base", ["var"], [Claim("test_accuracy", "higher")]).itertuples()
    assert (row.wins, row.ties, row.p_beats) == (8, 2, 0.8)
    low, high = proportion_confint(8, 10, alpha=0.05, method="wilson")
    assert (row.p_beats_low, row.p_beats_high) == pytest.approx((low, high))
    _, sentence = verdict_sentence(ClaimVerdict.from_record(row._asdict()))
    assert "holds on 8 of 10 seeds (2 tied)" in sentence and "90%" not in sentence


def test_all_equal_differences_give_no_zero_width_interval():
    table = tiny_table({"test_accuracy": [0.01] * 8})
    (row,) = compare_arms(table, "base", ["var"], [Claim("test_accuracy", "higher")]).itertuples()
    assert np.isnan(row.ci_low) and np.isnan(row.ci_high) and row.p_value == 2 / 2**8
    words = estimate_words(row)
    assert "all 8 seeds equal" in words and "[0.01, 0.01]" not in words


def test_every_interval_is_labelled_and_computed_at_the_level_the_decision_used():
    rng = np.random.default_rng(3)
    d = list(rng.normal(0.0, 0.001, 12))
    table = tiny_table({"test_accuracy": d})
    spent = 0.0123  # an adaptive look's share of alpha
    (row,) = paired_evidence(
        table, "base", ["var"], [Claim("test_accuracy", "higher", 0.002)], 1 - spent
    ).itertuples()
    diffs = np.asarray(table[table.arm == "var"]["test_accuracy"]) - 10.0
    assert (row.ci_low, row.ci_high) == pytest.approx(brute_interval(diffs, 1 - spent))
    assert (row.ci90_low, row.ci90_high) == pytest.approx(brute_interval(diffs, 1 - 2 * spent))
    assert "98.8% CI [" in estimate_words(row) and interval90(row).startswith("97.5% CI [")
    shown = reading(SimpleNamespace(**row._asdict(), verdict="not shown equivalent"))
    assert "97.5% CI" in shown and "90% CI" not in shown
    # TOST at the spent alpha rejects exactly when that interval sits inside the margin.
    inside = row.ci90_low > -0.002 and row.ci90_high < 0.002
    assert inside == (max(tost(diffs, 0.002)) < spent)


def test_tost_uses_as_many_patterns_as_the_difference_test():
    d = np.random.default_rng(5).normal(0.05, 1, 20)
    p_low, p_high = tost(d, 0.5)
    assert p_low == sign_flip_p(d + 0.5, "greater", random_patterns=STUDY_PATTERNS)[0]
    assert p_high == sign_flip_p(d - 0.5, "less", random_patterns=STUDY_PATTERNS)[0]


def test_alpha_is_spent_only_at_looks_that_can_decide():
    design = SequentialDesign(first=6, block=2, max_seeds=20, family=3)
    spent = design.spent()
    assert sum(spent) == pytest.approx(0.05)
    for seeds, alpha in zip(design.looks(), spent, strict=True):  # by hand: 2/2^n * 3 < alpha
        if alpha > 0:
            assert 2 / 2**seeds * 3 < alpha
    assert spent[design.looks().index(6)] == 0 and spent[design.looks().index(10)] == 0
    # (3, 1, 10) could never decide before: every look's share was below 2/2^n * 3.
    small = SequentialDesign(first=3, block=1, max_seeds=10, family=3)
    assert small.problem() == "" and sum(small.spent()) == pytest.approx(0.05)
    effect = np.full((10, 3), 5.0) + np.arange(10)[:, None] * 0.01
    evidence = [simulated_evidence(effect[:n], np.array([1, 1, 1])) for n in small.looks()]
    verdicts = sequential_decide(evidence, small)
    assert (verdicts["verdict"] == SUPPORTED).all() and set(verdicts["seeds_at_look"]) == {8}


def test_a_design_that_can_never_decide_is_refused_when_the_spec_is_read(tmp_path):
    from tests.spec.test_spec import GOOD, assert_refused

    assert "no look can reach a verdict" in SequentialDesign(3, 1, 6, family=3).problem()
    assert_refused(
        tmp_path,
        GOOD + "[adaptive]\nmax_seeds = 6\nblock = 1\n",
        "adaptive",
        "Raise max_seeds to at least 7",
    )


def test_the_guidance_counts_ties():
    # 7 seeds, 3 claims: 7 would suffice (2/128 * 3 < 0.05), but one tied pair leaves 6.
    clear = [0.01 * (i + 1) for i in range(7)]
    table = tiny_table(
        {
            "test_accuracy": [*clear[:6], 0.0],
            "epoch_train_seconds": clear,
            "log_loss_spread": clear,
        }
    )
    claims = [
        Claim("test_accuracy", "higher"),
        Claim("epoch_train_seconds", "higher"),
        Claim("log_loss_spread", "higher"),
    ]
    rows = compare_arms(table, "base", ["var"], claims)
    first = rows.iloc[0]
    assert first["informative"] == 6 and first["verdict"] != SUPPORTED
    assert "1 of them tied" in first["note"] and "1 more untied seed" in first["note"]
    assert (rows["verdict"].iloc[1:] == SUPPORTED).all()


def test_censored_comparisons_give_bounds_not_a_measurement():
    rows = []
    steps = [(400, 1000), (500, 900), (450, 800), (600, 1200), (300, 1000), (350, 700), (800, None)]
    for seed, (variant, base) in enumerate(steps):  # seed 6: the baseline never reached it
        rows.append(
            {
                "arm": "b",
                "seed": seed,
                STEPS_90: base or 2000,
                REACHED_90: base is not None,
            }
        )
        rows.append({"arm": "v", "seed": seed, STEPS_90: variant, REACHED_90: True})
    (row,) = compare_arms(
        pd.DataFrame(rows), "b", ["v"], [Claim("steps_to:0.9", "lower")]
    ).itertuples()
    assert np.isnan(row.estimate) and np.isnan(row.effect_size) and row.magnitude == ""
    # By hand (steps are compared as differences): the six measured seeds, and
    # (-inf, 800 - 2000] for the last, whose baseline needed more than 2000 steps.
    measured = sorted(v - b for v, b in steps[:6])
    lows = sorted([*measured, -math.inf])
    highs = sorted([*measured, 800 - 2000])
    assert (row.median_low, row.median_high) == (lows[3], highs[3])
    # n = 7: P(Bin(7, 1/2) <= 0) = 0.008 < 0.025 <= P(<= 1): the interval is [x(1), x(7)].
    assert (row.ci_low, row.ci_high) == (-math.inf, highs[6])
    words = estimate_words(row)
    assert words.startswith("median difference") and "CI for the median" in words
    assert "[−∞, " in words and "(1 censored)" in words
