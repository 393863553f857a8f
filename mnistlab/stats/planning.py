"""Seeds for a named effect that a user can trust: planned over the pilot's own sampling error.

A pilot's SD is itself an estimate: planned at it, half the pilots understate the spread, and
studies sized from them fall short of the promised power (from 10-seed pilots at d_z = 1 the
median true power was 0.73; bench/planning_calibration.py). So the plan uses
an upper confidence bound of the SD (Browne 1995's "upper confidence limit" approach): the
pilot's centred differences are scaled to the bound s * sqrt((n - 1) / chi2_{1 - level, n - 1})
(so their resampled population has that SD, its shape kept), shifted to the effect, and
resampled through the study's exact test with Holm (power.power_curve). The bounds at 10% and
90% give the range of plans the pilot's sampling error allows.

A Monte Carlo power is only an estimate: a count counts as enough only when its power minus
1.645 Monte Carlo standard errors reaches the target, so the simulation's own noise cannot
give a count whose power is just below it (issue 24: the paper study's 8 seeds, whose
power under its own model is 0.797, passed as enough).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats

from mnistlab.stats.decisions import ALPHA

PLANNING_LEVEL = 0.8  # the SD's one-sided upper confidence level the plan uses
RANGE_LEVELS = (0.1, 0.9)  # the range of plans over the pilot's sampling error
MONTE_CARLO_Z = 1.645  # a count is enough when its power's one-sided 95% lower bound is


def monte_carlo_se(power: float | np.ndarray, simulations: int) -> float | np.ndarray:
    """The standard error of a power estimated from `simulations` simulated studies."""
    p = np.asarray(power, dtype=np.float64)
    return np.sqrt(p * (1 - p) / simulations)


def clears(power: float, simulations: int, target: float) -> bool:
    """Whether an estimated power is above target beyond its Monte Carlo error."""
    return bool(power - MONTE_CARLO_Z * monte_carlo_se(power, simulations) >= target)


def sd_bound(sd: float, n: int, level: float) -> float:
    """The one-sided upper `level` confidence bound of a normal SD from n values (chi-square,
    n - 1 degrees of freedom): s * sqrt((n - 1) / chi2.ppf(1 - level, n - 1))."""
    if n < 2:
        return math.nan
    return float(sd * math.sqrt((n - 1) / stats.chi2.ppf(1 - level, n - 1)))


def scaled_residuals(differences: np.ndarray, sd: float) -> np.ndarray:
    """The centred differences scaled so that resampling them (their population, ddof = 0)
    has SD sd; unchanged when they do not vary."""
    d = np.asarray(differences, dtype=np.float64)
    residual = d - d.mean()
    spread = residual.std(ddof=0)
    return residual * (sd / spread) if spread > 0 else residual


def fewest(counts: tuple[int, ...], enough: Callable[[int], bool]) -> int | None:
    """The first count for which enough(count) holds, by bisection (enough grows with the
    count); None when not even the last does. About log2(len(counts)) calls."""
    low, high = 0, len(counts)  # the answer's index lies in [low, high]; high = none
    while low < high:
        middle = (low + high) // 2
        if enough(counts[middle]):
            high = middle
        else:
            low = middle + 1
    return counts[low] if low < len(counts) else None


def plan_seeds(
    differences: np.ndarray,
    effect: float,
    family_size: int = 1,
    level: float | None = PLANNING_LEVEL,
    seed_counts: tuple[int, ...] | None = None,
    simulations: int | None = None,
    alpha: float = ALPHA,
    target: float | None = None,
) -> int | None:
    """Fewest seeds whose power at `effect` clears target (80%) with the pilot's SD at its upper
    `level` bound (None: the pilot's SD as it is, the uncalibrated plan).

    differences: (n,) the pilot's per-seed differences on the test's scale; effect on that
    scale. Power is power.power_curve's (resampling, the exact test, Holm over family_size),
    judged with its Monte Carlo error (clears). None: more than the grid's largest count.
    """
    from mnistlab.stats.power import SEED_GRID, SIMULATIONS, TARGET_POWER, power_curve

    seed_counts = seed_counts or SEED_GRID
    simulations = simulations or SIMULATIONS
    target = TARGET_POWER if target is None else target
    d = np.asarray(differences, dtype=np.float64)
    n = len(d)
    sd = float(d.std(ddof=1))
    spread = sd_bound(sd, n, level) if level is not None else sd * math.sqrt((n - 1) / n)
    sample = (scaled_residuals(d, spread) + effect)[:, None]

    def enough(count: int) -> bool:
        power = power_curve(sample, (count,), family_size, simulations, alpha, seed=count)
        return clears(float(power[0, 0]), simulations, target)

    return fewest(seed_counts, enough)


def plan_range(
    differences: np.ndarray, effect: float, family_size: int = 1, **options
) -> tuple[int | None, int | None]:
    """The plans at the SD's lower and upper RANGE_LEVELS bounds: the seeds a pilot this noisy
    could call for (an 80% interval over its sampling error)."""
    low, high = RANGE_LEVELS
    return (
        plan_seeds(differences, effect, family_size, low, **options),
        plan_seeds(differences, effect, family_size, high, **options),
    )


def true_power(
    count: int,
    effect: float,
    family_size: int = 1,
    studies: int = 20_000,
    alpha: float = ALPHA,
    seed: int = 0,
) -> float:
    """The power of the study's exact test at `count` seeds when the differences are normal with
    mean effect and SD 1 (effect is a d_z), the family padded with tests that never reject (as
    the plan assumes): the share of simulated studies with p < alpha / family_size and a mean
    above 0. Independent of the plan: no resampling of any pilot."""
    from mnistlab.stats.signflip import sign_flip_p

    rng = np.random.default_rng(seed + 1000 * count)
    d = rng.normal(effect, 1.0, (studies, count))
    p = sign_flip_p(d, "two-sided", exact_up_to=14)
    return float(((p * family_size < alpha) & (d.mean(1) > 0)).mean())


def simulate_pilots(
    pilot_seeds: int,
    effect: float,
    pilots: int,
    family_size: int = 1,
    level: float | None = PLANNING_LEVEL,
    seed: int = 0,
) -> np.ndarray:
    """The plans (seeds; 0 where none) that `pilots` normal pilots of pilot_seeds seeds, drawn
    at d_z = effect, give through plan_seeds at that effect."""
    rng = np.random.default_rng(seed)
    plans = [
        plan_seeds(rng.normal(effect, 1.0, pilot_seeds), effect, family_size, level) or 0
        for _ in range(pilots)
    ]
    return np.array(plans)
