"""The statistics that decide, each against an independent computation on tiny inputs."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from mnistlab import names
from mnistlab.spec.study import Claim
from mnistlab.stats.analysis import equivalence_test, magnitude, paired_test, probability_of_beating
from mnistlab.stats.censored import censored_sign_test, censored_signs, median_interval
from mnistlab.stats.decisions import CONTRADICTED, EQUIVALENT, INCONCLUSIVE, SUPPORTED, compare_arms
from mnistlab.stats.multiplicity import holm
from mnistlab.stats.power import power_curve, study_power
from mnistlab.stats.sequential import SequentialDesign, sequential_decide, simulated_evidence
from mnistlab.stats.signflip import sign_flip_p
from tests.conftest import holm_by_hand, tiny_table

STEPS_90 = names.threshold_column(names.STEPS_TO, 0.9)
REACHED_90 = names.threshold_column(names.REACHED, 0.9)


@pytest.mark.parametrize("n", [3, 7, 12, 16])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_the_fast_sign_flip_test_equals_scipys_exact_permutation_test(n, alternative):
    rng = np.random.default_rng(n)
    samples = rng.normal(0.3, 1, size=(6, n))
    samples[0] = np.round(samples[0])  # ties between sign patterns
    ours = sign_flip_p(samples, alternative)
    theirs = [
        stats.permutation_test(
            (d,), np.mean, permutation_type="samples", alternative=alternative, n_resamples=np.inf
        ).pvalue
        for d in samples
    ]
    assert ours == pytest.approx(theirs)


def test_above_sixteen_pairs_the_sign_flip_test_is_a_close_monte_carlo_estimate():
    d = np.random.default_rng(0).normal(0.4, 1, size=24)
    exact_by_normal_theory = stats.ttest_1samp(d, 0).pvalue
    assert sign_flip_p(d)[0] == pytest.approx(exact_by_normal_theory, abs=0.03)


@pytest.mark.parametrize("n", [18, 250])
def test_a_studys_test_above_sixteen_pairs_agrees_with_the_exact_p_within_monte_carlo_error(n):
    d = np.random.default_rng(n).normal(0.15, 1, size=n)
    ours = paired_test(d).p_value
    if n <= 20:  # 2**18 patterns: the exact answer, by enumeration
        exact = sign_flip_p(d, exact_up_to=n)[0]
    else:  # scipy's own Monte Carlo, with another random stream
        exact = stats.permutation_test(
            (d,), np.mean, permutation_type="samples", n_resamples=100_000, random_state=1
        ).pvalue
    standard_error = np.sqrt(exact * (1 - exact) / 100_000) * (1 if n <= 20 else np.sqrt(2))
    assert 0.01 < exact < 0.99  # a p-value where Monte Carlo error shows
    assert abs(ours - exact) < 4 * standard_error
    assert paired_test(d).p_value == ours  # seeded: the same numbers every time


@pytest.mark.parametrize("m", [3, 6])
def test_holm_matches_statsmodels_and_the_hand_computation(m):
    p = np.random.default_rng(m).uniform(0, 0.2, size=m)
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    assert holm(p) == pytest.approx(holm_by_hand(list(p)))
    with_gap = np.append(p, np.nan)  # an untestable claim is not in the family
    assert np.isnan(holm(with_gap)[-1]) and holm(with_gap)[:-1] == pytest.approx(holm(p))


def test_the_interval_is_the_inverted_sign_flip_test_by_brute_force():
    # Independent of signflip.py: every shift tried is a subset mean (where the acceptance set
    # can end), every p by enumerating all 2**n sign patterns with itertools.
    d = np.array([0.3, -0.1, 0.5, 0.2, 0.9, 0.4, 0.0, 0.6])
    candidates = sorted(
        {sum(c) / k for k in range(1, 9) for c in itertools.combinations(d.tolist(), k)}
    )

    def p_by_hand(delta):
        y = d - delta
        observed = y.sum()
        sums = [
            sum(s * v for s, v in zip(signs, y, strict=True))
            for signs in itertools.product((1, -1), repeat=8)
        ]
        up = sum(x >= observed - 1e-12 for x in sums) / 256
        down = sum(x <= observed + 1e-12 for x in sums) / 256
        return min(1.0, 2 * min(up, down))

    accepted = [c for c in candidates if p_by_hand(c) >= 0.05]
    ours = paired_test(d)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((min(accepted), max(accepted)))
    assert ours.ci_low <= ours.mean_difference <= ours.ci_high and p_by_hand(d.mean()) == 1.0


def test_power_agrees_with_the_t_tests_closed_form_on_normal_data():
    # Resampling a large normal pilot approximates sampling from the normal itself, where the
    # sign-flip test is as powerful as the t-test: statsmodels' noncentral-t power.
    d = np.random.default_rng(1).normal(0.5, 1, size=(2000, 1))
    effect = d.mean() / d.std(ddof=1)
    ours = power_curve(d, (10, 20, 40), simulations=3000)[:, 0]
    closed = [TTestPower().power(effect, n, 0.05) for n in (10, 20, 40)]
    assert ours == pytest.approx(closed, abs=0.04)


def test_equivalence_on_constructed_data():
    close = [0.001, -0.002, 0.0, 0.001, -0.001, 0.002, 0.0, -0.001, 0.001, 0.0]
    table = tiny_table({"test_accuracy": close})
    (row,) = compare_arms(
        table, "base", ["var"], [Claim("test_accuracy", "higher", 0.01)]
    ).itertuples()
    assert row.verdict == EQUIVALENT and row.p_equivalence == pytest.approx(1 / 1024)
    assert row.ci90_low > -0.01 and row.ci90_high < 0.01
    # The same differences with a margin they exceed: not equivalent, and too small to matter.
    (row,) = compare_arms(
        table, "base", ["var"], [Claim("test_accuracy", "higher", 0.0005)]
    ).itertuples()
    assert row.verdict == INCONCLUSIVE
    # TOST by hand: both one-sided tests reject when every shifted difference has one sign.
    assert equivalence_test(np.array([0.1] * 8), 0.5) == pytest.approx(1 / 256)
    assert equivalence_test(np.array([0.1] * 8), 0.05) == 1.0


def test_a_ratio_margin_is_a_log_ratio():
    ratios = [1.01, 0.99, 1.0, 1.005, 0.995, 1.01, 0.99, 1.0, 1.002, 0.998]
    table = tiny_table({"epoch_train_seconds": [10 * r - 10 for r in ratios]})
    claim = Claim("epoch_train_seconds", "higher", 1.05)
    (row,) = compare_arms(table, "base", ["var"], [claim]).itertuples()
    assert row.verdict == EQUIVALENT and row.estimate_kind == "ratio"


def test_censored_pairs_have_a_sign_only_where_the_bound_decides_it():
    pairs = pd.DataFrame(
        {"baseline": [300, 300, 300, 500, 500, 200], "variant": [200, 400, 250, 400, 600, 200]}
    )
    reached = pd.DataFrame(
        {
            "baseline": [True, True, True, False, False, False],
            "variant": [True, False, False, True, True, False],
        }
    )
    signs = censored_signs(pairs, reached)
    # known; variant censored above (known +); variant censored below (unknown);
    # baseline censored above the variant (known -); baseline censored below (unknown); both.
    assert np.array_equal(np.isnan(signs), [False, False, True, False, True, True])
    assert signs[[0, 1, 3]].tolist() == [-1, 1, -1]


def test_an_unknown_sign_counts_against_whichever_verdict_is_shown():
    # 7 pairs for the claim (lower), 0 against, 1 unknown: support needs 7 of 8 coin flips.
    signs = np.array([-1.0] * 7 + [math.nan])
    p, evidence = censored_sign_test(signs, direction=-1)
    assert evidence == -1 and p == pytest.approx(2 * stats.binom.sf(6, 8, 0.5))
    # With 8 known, the same test would give 2 / 2**8.
    assert censored_sign_test(np.array([-1.0] * 8), -1)[0] == pytest.approx(2 / 256)


def test_a_claim_with_censored_pairs_uses_the_sign_test_and_says_so():
    rows = []
    for seed in range(9):
        rows.append({"arm": "base", "seed": seed, STEPS_90: 1000, REACHED_90: seed < 8})
        rows.append({"arm": "var", "seed": seed, STEPS_90: 500, REACHED_90: True})
    (row,) = compare_arms(
        pd.DataFrame(rows), "base", ["var"], [Claim("steps_to:0.9", "lower")]
    ).itertuples()
    assert row.censored_pairs == 1 and row.test.startswith("exact sign test")
    assert row.verdict == SUPPORTED and "1 of 9 pairs censored" in row.note


def test_effect_in_plain_terms():
    beats = probability_of_beating(np.array([1.0, 2, -1, 0]), direction=1)
    share = beats.share
    assert share == 0.5 and beats.ties == 1  # 2 wins, 1 tie, 1 loss: a tie is no half win
    z = stats.norm.ppf(0.975)  # Wilson's interval by hand
    centre = (share + z**2 / 8) / (1 + z**2 / 4)
    half = z * math.sqrt(share * (1 - share) / 4 + z**2 / 64) / (1 + z**2 / 4)
    assert (beats.low, beats.high) == pytest.approx((centre - half, centre + half))
    assert [magnitude(x) for x in (0.1, -0.3, 0.6, 2.0)] == [
        "negligible",
        "small",
        "medium",
        "large",
    ]


def test_median_interval_from_order_statistics_counts_censored_runs():
    median, low, high = median_interval(np.array([5, 1, 3, 2, 4, 6, 8, 7, 10, 9.0]))
    # n = 10: P(Bin(10, 1/2) <= 1) = 0.011 < 0.025 <= P(<= 2): the interval is [x(2), x(9)].
    assert (median, low, high) == (5.5, 2.0, 9.0)
    assert median_interval(np.array([1.0, 2, 3, np.inf, np.inf, np.inf]))[0] == math.inf


def test_sequential_looks_spend_alpha_and_a_decided_claim_stays_decided():
    design = SequentialDesign(first=8, block=4, max_seeds=16)
    assert design.looks() == [8, 12, 16] and sum(design.spent()) == pytest.approx(0.05)
    assert all(a > 0 for a in design.spent())
    effect = np.zeros((16, 2))
    effect[:, 0] = 5.0 + np.arange(16) * 0.01  # decided at the first look
    effect[:, 1] = np.where(np.arange(16) % 2, 1.0, -1.0)  # never
    evidence = [simulated_evidence(effect[:n], np.array([1, 1])) for n in design.looks()]
    verdicts = sequential_decide(evidence, design)
    assert verdicts["verdict"].tolist() == [SUPPORTED, INCONCLUSIVE]
    assert verdicts["look"].tolist() == [1, 3] and verdicts["seeds_at_look"].tolist() == [8, 16]
    spent = design.spent()
    assert verdicts["p_sequential"].iloc[0] == pytest.approx(
        min(1, verdicts["p_holm"].iloc[0] * 0.05 / spent[0])
    )


def test_study_power_says_plainly_when_a_pilot_is_too_small():
    table = tiny_table({"test_accuracy": [0.01, 0.02, 0.015]})
    rows, curves = study_power(
        table, "base", ["var"], [Claim("test_accuracy", "higher")], 1, simulations=200
    )
    (row,) = rows.itertuples()
    assert row.n == 3 and "Only 3 paired seeds" in row.note and "rough guess" in row.note
    assert set(curves["seeds"]) >= {3, 10, 20}


def test_contradiction_is_reported_when_the_data_go_the_other_way():
    table = tiny_table({"test_accuracy": [-0.01 - 0.001 * i for i in range(8)]})
    (row,) = compare_arms(table, "base", ["var"], [Claim("test_accuracy", "higher")]).itertuples()
    assert row.verdict == CONTRADICTED and row.p_beats == 0


def test_the_smallest_exact_p_decides_how_many_seeds_a_verdict_needs():
    """By hand: 7 pairs give 2/128 = 0.0156, times 3 tests = 0.047 < 0.05; 6 pairs 0.094."""
    from mnistlab.stats.decisions import min_seeds_for_verdict
    from mnistlab.stats.signflip import can_decide, sign_flip_p, smallest_p

    assert smallest_p(7) == 2 / 128
    assert can_decide(7, 3, 0.05) and not can_decide(6, 3, 0.05)
    assert [min_seeds_for_verdict(m) for m in (1, 3, 4, 6, 7)] == [6, 7, 8, 8, 9]
    # The rule is the test's own: all seven pairs one way give exactly that p.
    assert sign_flip_p(np.ones(7), "two-sided")[0] == pytest.approx(smallest_p(7))


def test_power_with_a_family_smaller_than_its_tests_corrects_over_the_tests():
    # With --workers 2 every run is contended, so timing claims get no verdict and the
    # verdicts' family is smaller than the claims the power analysis simulates.
    d = np.random.default_rng(3).normal(0.5, 1.0, (8, 3))
    smaller = power_curve(d, (5, 10), family_size=2, simulations=400)
    assert np.array_equal(smaller, power_curve(d, (5, 10), family_size=3, simulations=400))
