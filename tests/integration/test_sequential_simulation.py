"""The sequential design's error control and its saving, shown by simulation with the real
decision code (sequential.sequential_decide), not asserted."""

import math

import numpy as np
import pytest

from mnistlab.stats.sequential import SequentialDesign, simulate

pytestmark = pytest.mark.slow
DESIGN = SequentialDesign(first=10, block=5, max_seeds=30)  # the README's example
DIRECTIONS = np.array([1, -1, 1])


def test_under_the_null_the_family_wise_false_verdict_rate_stays_at_alpha():
    studies = 2000
    rate, _ = simulate(DESIGN, np.zeros(3), DIRECTIONS, studies, seed=11)
    monte_carlo_error = math.sqrt(DESIGN.alpha * (1 - DESIGN.alpha) / studies)
    assert rate <= DESIGN.alpha + 2 * monte_carlo_error


def test_under_an_effect_of_one_sd_the_study_stops_before_max_seeds():
    _, seeds = simulate(DESIGN, np.ones(3) * DIRECTIONS, DIRECTIONS, 300, seed=12)
    assert seeds < DESIGN.max_seeds - DESIGN.block  # on average at least one look early
