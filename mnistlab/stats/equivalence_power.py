"""Power of an equivalence claim: how many seeds show "the same within ±margin" (TOST).

The question is not whether a difference is found but whether the two one-sided sign-flip tests
(analysis.tost) both reject, so that the mean lies inside (-margin, margin). Its power is
largest when the true difference is 0 and falls to alpha as it nears the margin. As for a
difference (power.power_curve): the study's centred per-seed differences, scaled to the planned
spread (planning.scaled_residuals), shifted to the true difference (0, or the effect the user
names), resampled; the TOST p (the larger one-sided p) is decided at Holm's strictest level,
alpha / family_size, and a count is enough when its power clears 80% beyond its Monte Carlo
error (planning.clears). Checked against a simulation with analysis.tost itself and against
the paired t-test's TOST power (statsmodels) on normal differences.
"""

from __future__ import annotations

import math

import numpy as np

from mnistlab.stats.decisions import ALPHA
from mnistlab.stats.planning import PLANNING_LEVEL, RANGE_LEVELS, clears, fewest, sd_bound
from mnistlab.stats.planning import scaled_residuals as scaled
from mnistlab.stats.signflip import sign_flip_p

EXACT_IN_SIMULATION = 12  # as power.py: every pattern up to 12 seeds, 4,000 random above


def tost_power(
    sample: np.ndarray,
    margin: float,
    count: int,
    family_size: int = 1,
    simulations: int = 1000,
    alpha: float = ALPHA,
    seed: int = 0,
) -> float:
    """The share of `simulations` studies of `count` seeds, resampled from sample (n,), whose
    TOST p (max of the two one-sided sign-flip p-values) times family_size is below alpha."""
    rng = np.random.default_rng(seed)
    draws = np.asarray(sample, dtype=np.float64)[rng.integers(0, len(sample), (simulations, count))]
    above = sign_flip_p(draws + margin, "greater", exact_up_to=EXACT_IN_SIMULATION)
    below = sign_flip_p(draws - margin, "less", exact_up_to=EXACT_IN_SIMULATION)
    return float((np.maximum(above, below) * family_size < alpha).mean())


def tost_power_curve(
    differences: np.ndarray,
    margin: float,
    seed_counts: tuple[int, ...],
    family_size: int = 1,
    true_difference: float = 0.0,
    simulations: int = 1000,
    alpha: float = ALPHA,
) -> np.ndarray:
    """TOST power per seed count (len(seed_counts),), the pilot's spread kept as it is."""
    d = np.asarray(differences, dtype=np.float64)
    sample = d - d.mean() + true_difference
    return np.array(
        [
            tost_power(sample, margin, c, family_size, simulations, alpha, seed=c)
            for c in seed_counts
        ]
    )


def plan_equivalence(
    differences: np.ndarray,
    margin: float,
    family_size: int = 1,
    true_difference: float = 0.0,
    level: float | None = PLANNING_LEVEL,
    seed_counts: tuple[int, ...] | None = None,
    simulations: int | None = None,
    alpha: float = ALPHA,
) -> int | None:
    """Fewest seeds to show equivalence within ±margin with 80% power at true_difference, the
    pilot's SD at its upper `level` bound (None: as it is). margin and differences on the
    test's scale (log ratios for ratio measures). None: more than the grid's largest count."""
    from mnistlab.stats.power import SEED_GRID, SIMULATIONS, TARGET_POWER

    seed_counts = seed_counts or SEED_GRID
    simulations = simulations or SIMULATIONS
    d = np.asarray(differences, dtype=np.float64)
    n = len(d)
    sd = float(d.std(ddof=1))
    spread = sd_bound(sd, n, level) if level is not None else sd * math.sqrt((n - 1) / n)
    sample = scaled(d, spread) + true_difference

    def enough(count: int) -> bool:
        power = tost_power(sample, margin, count, family_size, simulations, alpha, seed=count)
        return clears(power, simulations, TARGET_POWER)

    return fewest(seed_counts, enough)


def equivalence_range(
    differences: np.ndarray, margin: float, family_size: int = 1, **options
) -> tuple[int | None, int | None]:
    """The plans at the SD's lower and upper RANGE_LEVELS bounds (planning.plan_range)."""
    low, high = RANGE_LEVELS
    return (
        plan_equivalence(differences, margin, family_size, level=low, **options),
        plan_equivalence(differences, margin, family_size, level=high, **options),
    )
