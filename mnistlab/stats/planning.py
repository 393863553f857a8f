"""Seeds a user can trust: planned over the pilot's own sampling error, for a named effect and
for the effect the pilot observed.

A pilot's SD is itself an estimate: planned at it, half the pilots understate the spread, and
studies sized from them fall short of the promised power (from 10-seed pilots at d_z = 1 the
median true power was 0.73; bench/planning_calibration.py). So the plan uses
an upper confidence bound of the SD (Browne 1995's "upper confidence limit" approach): the
pilot's centred differences are scaled to the bound s * sqrt((n - 1) / chi2_{1 - level, n - 1})
(so their resampled population has that SD, its shape kept), shifted to the effect, and
resampled through the study's exact test with Holm (power.power_curve). The bounds at 10% and
90% give the range of plans the pilot's sampling error allows.

Planned at the pilot's own effect, both its mean and its SD are estimates, and a plan at them
falls short about half the time (from 10-seed pilots at d_z = 1 the median true power was 0.74,
from 5-seed pilots 0.60: issue 24). So the observed effect is planned as a safeguard power
analysis (Perugini, Gallucci & Costantini 2014): at a one-sided lower confidence bound of the
standardized effect d_z = mean / SD, from the noncentral t (the pilot's t = d_z * sqrt(n) has
n - 1 degrees of freedom and noncentrality delta * sqrt(n); Steiger & Fouladi 1997), which
covers the sampling error of the mean and of the SD together. Its level, EFFECT_LEVEL, is
the one whose studies reach 80% median true power from pilots of 5, 10 and 20 seeds in
bench/planning_calibration.py with a margin (0.95 to 0.99 at 70%; 0.82 at 50%, about the
pilot's own d_z). Perugini et al.'s own 80% (their 60% two-sided interval) overshoots: from 10-seed pilots
at d_z = 1 its median plan is 30 seeds where 14 suffice, and > 60 for a quarter of them.
When that bound is at or below 0 the pilot has not shown an effect in either direction and
cannot size a study (bound_effect is None): the user must name the effect they care about.

A Monte Carlo power is only an estimate: a count counts as enough only when its power minus
1.645 Monte Carlo standard errors reaches the target, so the simulation's own noise cannot
give a count whose power is just below it (issue 24: the paper study's 8 seeds, whose
power under its own model is 0.797, passed as enough).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import optimize, stats

from mnistlab.stats.decisions import ALPHA

PLANNING_LEVEL = 0.8  # the SD's one-sided upper confidence level the plan uses
EFFECT_LEVEL = 0.7  # d_z's one-sided lower confidence level the observed effect is planned at
RANGE_LEVELS = (0.1, 0.9)  # the range of plans over the pilot's sampling error
T_CAP = 1000.0  # dz_bound: a pilot's |t| is taken as at most this
MONTE_CARLO_Z = 1.645  # a count is enough when its power's one-sided 95% lower bound reaches it


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


def plan_at(
    differences: np.ndarray,
    effect: float,
    spread: float,
    family_size: int = 1,
    seed_counts: tuple[int, ...] | None = None,
    simulations: int | None = None,
    alpha: float = ALPHA,
    target: float | None = None,
) -> int | None:
    """Fewest seeds whose power clears target (80%) when the pilot's centred differences,
    scaled to population SD `spread`, are shifted to `effect` and resampled: the one planning
    path of plan_seeds (a named effect) and plan_observed (the pilot's own effect).

    differences: (n,) per-seed differences on the test's scale; effect and spread on that
    scale. Power is power.power_curve's (resampling, the exact test, Holm over family_size),
    judged with its Monte Carlo error (clears). None: more than the grid's largest count.
    """
    from mnistlab.stats.power import SEED_GRID, SIMULATIONS, TARGET_POWER, power_curve

    seed_counts = seed_counts or SEED_GRID
    simulations = simulations or SIMULATIONS
    target = TARGET_POWER if target is None else target
    sample = (scaled_residuals(differences, spread) + effect)[:, None]

    def enough(count: int) -> bool:
        power = power_curve(sample, (count,), family_size, simulations, alpha, seed=count)
        return clears(float(power[0, 0]), simulations, target)

    return fewest(seed_counts, enough)


def plan_seeds(
    differences: np.ndarray,
    effect: float,
    family_size: int = 1,
    level: float | None = PLANNING_LEVEL,
    **options,
) -> int | None:
    """Fewest seeds whose power at `effect` clears target (80%) with the pilot's SD at its upper
    `level` bound (None: the pilot's SD as it is, the uncalibrated plan).

    differences: (n,) the pilot's per-seed differences on the test's scale; effect on that
    scale; options: plan_at's (seed_counts, simulations, alpha, target). None: more than the
    grid's largest count.
    """
    d = np.asarray(differences, dtype=np.float64)
    n = len(d)
    sd = float(d.std(ddof=1))
    spread = sd_bound(sd, n, level) if level is not None else sd * math.sqrt((n - 1) / n)
    return plan_at(d, effect, spread, family_size, **options)


def dz_bound(differences: np.ndarray, level: float) -> float:
    """The one-sided lower `level` confidence bound of d_z = mean / SD (ddof 1) in the direction
    the pilot's mean points: the delta with nct.cdf(|t|, n - 1, delta * sqrt(n)) = level, t the
    pilot's one-sample t (noncentral t interval, Steiger & Fouladi 1997).

    differences: (n,), any scale. Below 0 when the pilot's |t| is under the central t's level
    quantile (no effect shown in either direction); inf when the differences do not vary but
    are not 0; 0 when they are all 0; NaN for fewer than 2. A |t| past T_CAP is taken as T_CAP
    (a smaller, still valid lower bound).
    """
    d = np.asarray(differences, dtype=np.float64)
    n = len(d)
    if n < 2:
        return math.nan
    mean, sd = abs(float(d.mean())), float(d.std(ddof=1))
    if not sd > 0:
        return math.inf if mean > 0 else 0.0
    # Past |t| = T_CAP scipy's noncentral t is slow and inexact; the bound grows with t, so the
    # bound at T_CAP is still a (lower) bound for any larger t.
    t, df = min(mean / sd * math.sqrt(n), T_CAP), n - 1

    def excess(noncentrality: float) -> float:  # falls as the noncentrality grows
        below = float(stats.nct.cdf(t, df, noncentrality))
        if math.isnan(below):  # scipy's nct gives NaN far in its tails (df = 1, |nc| > 10)
            below = 1 - float(stats.nct.sf(t, df, noncentrality))
        if math.isnan(below):  # there the cdf is 1 below t and 0 above it
            below = 1.0 if noncentrality < t else 0.0
        return below - level

    step = 1.0
    low, high = t - step, t + step
    while excess(low) < 0:
        step *= 2
        low = t - step
    while excess(high) > 0:
        step *= 2
        high = t + step
    return float(optimize.brentq(excess, low, high, xtol=1e-10)) / math.sqrt(n)


def bound_effect(differences: np.ndarray, level: float = EFFECT_LEVEL) -> float | None:
    """The pilot's effect at d_z's lower `level` bound (dz_bound), on the differences' scale and
    signed as their mean: bound * SD (the mean itself when they do not vary). None when the bound
    is at or below 0 or undefined: the pilot cannot size a study."""
    d = np.asarray(differences, dtype=np.float64)
    bound = dz_bound(d, level)
    if not bound > 0:
        return None
    sign = 1.0 if d.mean() > 0 else -1.0
    sd = float(d.std(ddof=1))
    return float(d.mean()) if math.isinf(bound) else sign * bound * sd


def plan_observed(
    differences: np.ndarray, family_size: int = 1, level: float = EFFECT_LEVEL, **options
) -> int | None:
    """Fewest seeds for 80% power at the pilot's own effect, calibrated over its sampling error:
    planned (plan_at) at d_z's lower `level` bound (bound_effect), the pilot's differences
    scaled to its SD (ddof 1) so that the resampled d_z is the bound. A safeguard power
    analysis (Perugini, Gallucci & Costantini 2014).

    differences: (n,) on the test's scale; options: plan_at's. None: more than the grid's
    largest count. Raises ValueError when the pilot cannot size a study (bound_effect is None).
    """
    d = np.asarray(differences, dtype=np.float64)
    effect = bound_effect(d, level)
    if effect is None:
        raise ValueError("the pilot's lower bound of the effect is at or below 0")
    return plan_at(d, effect, float(d.std(ddof=1)), family_size, **options)


def observed_range(
    differences: np.ndarray, family_size: int = 1, **options
) -> tuple[int | None, int | None]:
    """The plans at d_z's lower RANGE_LEVELS bounds (at 10%: a large effect, few seeds; at 90%: a
    small one, many): the seeds this pilot's sampling error allows. The top is None (more than
    the grid) when even the 90% bound is at or below 0."""
    low, high = RANGE_LEVELS
    return tuple(
        plan_observed(differences, family_size, level, **options)
        if bound_effect(differences, level) is not None
        else None
        for level in (low, high)
    )


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


NOT_SIZED = -1  # simulate_pilots: a pilot whose bound of the effect is at or below 0


def simulate_pilots(
    pilot_seeds: int,
    effect: float,
    pilots: int,
    family_size: int = 1,
    level: float | None = PLANNING_LEVEL,
    seed: int = 0,
    observed: bool = False,
) -> np.ndarray:
    """The plans (seeds; 0 where none on the grid) that `pilots` normal pilots of pilot_seeds
    seeds, drawn at d_z = effect, give: through plan_seeds at that effect with the SD at its
    `level` bound, or (observed) through plan_observed at d_z's lower `level` bound of the
    pilot's own effect, NOT_SIZED where the pilot cannot size a study."""
    rng = np.random.default_rng(seed)
    plans = []
    for _ in range(pilots):
        d = rng.normal(effect, 1.0, pilot_seeds)
        if not observed:
            plans.append(plan_seeds(d, effect, family_size, level) or 0)
        elif bound_effect(d, level) is None:
            plans.append(NOT_SIZED)
        else:
            plans.append(plan_observed(d, family_size, level) or 0)
    return np.array(plans)
