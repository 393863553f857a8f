"""The adaptive design's nominal levels: each look's first-crossing chance equals what it
spends, checked against scipy's multivariate normal probabilities (a different computation:
Genz's integration of the correlated z statistics, not the grid recursion)."""

import math

import numpy as np
import pytest
from scipy import stats

from mnistlab.stats.sequential import SequentialDesign, crossing_levels, sequential_decide
from tests.stats.test_decisions import simulated_evidence


def first_crossing(seeds, levels):
    """P(|Z_1| < c_1, ..., |Z_{k-1}| < c_{k-1}, |Z_k| >= c_k) per look, corr sqrt(n_j / n_k)."""
    bounds = [stats.norm.isf(a / 2) for a in levels]
    inside_before, crossings = 1.0, []
    for k in range(1, len(seeds) + 1):
        cov = [[math.sqrt(min(a, b) / max(a, b)) for b in seeds[:k]] for a in seeds[:k]]
        normal = stats.multivariate_normal(
            np.zeros(k), cov, seed=0, maxpts=2_000_000, abseps=1e-7, releps=1e-7
        )
        c = np.array(bounds[:k])
        inside = normal.cdf(c, lower_limit=-c)
        crossings.append(inside_before - inside)
        inside_before = inside
    return crossings


@pytest.mark.parametrize(
    "seeds, increments",
    [((10, 20), (0.01, 0.005)), ((10, 15, 20, 25, 30), (0.0075, 0.0028, 0.0024, 0.0021, 0.0019))],
)
def test_each_looks_nominal_level_makes_its_first_crossing_chance_what_it_spends(seeds, increments):
    levels = crossing_levels(seeds, increments, exact_up_to=0)  # a continuous test
    assert levels[0] == pytest.approx(increments[0])  # nothing before the first look
    assert all(a > b for a, b in zip(levels[1:], increments[1:], strict=True))
    assert first_crossing(seeds, levels) == pytest.approx(increments, abs=2e-5)


def test_what_the_exact_tests_steps_leave_unused_at_a_look_passes_to_the_next():
    """At 10 seeds the exact p-values are multiples of 2/1024: a level of 0.0075 rejects only
    at p <= 6/1024 = 0.00586 (by hand), so 0.0016 of the first look's share passes on."""
    levels = crossing_levels((10, 20), (0.0075, 0.005))
    assert levels[0] == pytest.approx(0.0075)
    used = first_crossing((10, 20), [6 / 1024, levels[1]])
    assert used[0] == pytest.approx(6 / 1024, abs=1e-6)
    assert sum(used) == pytest.approx(0.0075 + 0.005, abs=2e-5)


def test_the_design_spends_alpha_in_full_and_tests_at_levels_above_the_spent_shares():
    design = SequentialDesign(first=10, block=5, max_seeds=30, family=3)
    spent, nominal = design.spent(), design.nominal()
    assert sum(spent) == pytest.approx(0.05) and nominal[0] == pytest.approx(spent[0])
    assert all(n > s for n, s in zip(nominal[1:], spent[1:], strict=True))
    # The whole family's chance of a first crossing anywhere, one test: alpha / family, with
    # the first look (10 seeds) at the exact test's largest p below its level, 6/1024.
    usable = [6 / 1024] + [a / 3 for a in nominal[1:]]
    assert nominal[0] / 3 * 1024 == pytest.approx(7.73, abs=0.01)
    total = sum(first_crossing(design.looks(), usable))
    assert total == pytest.approx(0.05 / 3, abs=5e-5)


def test_a_look_decides_at_its_nominal_level_not_at_what_it_spends():
    design = SequentialDesign(first=8, block=4, max_seeds=16)
    spent, nominal = design.spent(), design.nominal()
    # Differences 1..16 with 1 and 7 negative: p = 0.195 at 8 seeds, 0.0122 at 12 (50 of the
    # 2^12 sign patterns reach |sum| >= 78 - 2 * 8 = 62, counted by hand in Python),
    # between the 0.0104 that look 2 spends and its nominal 0.0208.
    d = np.arange(1.0, 17.0)
    d[[0, 6]] *= -1
    evidence = [simulated_evidence(d[:n, None], np.array([1])) for n in design.looks()]
    p12 = evidence[1]["p_value"].iloc[0]
    assert evidence[0]["p_value"].iloc[0] > nominal[0]
    assert spent[1] < p12 < nominal[1], (spent, nominal, p12)
    verdicts = sequential_decide(evidence, design)
    assert verdicts["look"].tolist() == [2] and verdicts["verdict"].tolist() == ["supported"]
    assert verdicts["alpha_nominal"].iloc[0] == nominal[1]
