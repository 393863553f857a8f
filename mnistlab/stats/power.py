"""How many seeds? Power curves from a study's own paired differences, by resampling.

Each simulated study draws N seeds with replacement from the observed per-seed differences
(all of a seed's tests together, so their correlation is kept), runs the study's exact
sign-flip test on every claim and applies Holm over the whole family. Power is the fraction
of simulated studies that decide a claim the way the observed effect points.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mnistlab.spec.measures import SAME
from mnistlab.stats.analysis import margin_on_test_scale, paired_differences, paired_values
from mnistlab.stats.decisions import ALPHA, min_seeds_for_verdict
from mnistlab.stats.equivalence_power import (
    equivalence_range,
    plan_equivalence,
    tost_power_curve,
)
from mnistlab.stats.multiplicity import holm_rows
from mnistlab.stats.planning import (
    EFFECT_LEVEL,
    bound_effect,
    clears,
    dz_bound,
    monte_carlo_se,
    observed_range,
    plan_observed,
    plan_range,
    plan_seeds,
)
from mnistlab.stats.signflip import sign_flip_p, smallest_p_words

TARGET_POWER = 0.8
SIMULATIONS = 1000
SEED_GRID = (*range(3, 21), 25, 30, 35, 40, 50, 60)
RELIABLE_PILOT = 5  # fewer seeds than this resample too few distinct values to trust
# Simulated studies up to this many seeds use every sign pattern, larger ones 4,000 random
# patterns: the p-value's Monte Carlo error (under 0.004 near 0.05) barely moves a power.
EXACT_IN_SIMULATION = 12


def power_curve(
    differences: np.ndarray,
    seed_counts: tuple[int, ...] = SEED_GRID,
    family_size: int | None = None,
    simulations: int = SIMULATIONS,
    alpha: float = ALPHA,
    seed: int = 0,
) -> np.ndarray:
    """Power per seed count and test: shape (len(seed_counts), tests).

    differences: (n, tests) observed per-seed differences on each test's scale. A test
    counts as decided when its Holm-adjusted p < alpha and its mean has the observed sign;
    family_size (default: tests) pads the family with tests that never reject, e.g. the
    equivalence tests of claims with a margin.
    """
    d = np.asarray(differences, dtype=np.float64)
    n, tests = d.shape
    observed_sign = np.sign(d.mean(0))
    # A family smaller than the tests simulated (timing claims with no clean runs have no
    # verdict, so the verdicts' family omits them) is taken as the tests themselves.
    padding = max(0, (family_size or tests) - tests)
    rng = np.random.default_rng(seed)
    power = np.zeros((len(seed_counts), tests))
    for row, count in enumerate(seed_counts):
        sample = d[rng.integers(0, n, size=(simulations, count))]  # (simulations, N, tests)
        p = np.stack(
            [sign_flip_p(sample[:, :, t], exact_up_to=EXACT_IN_SIMULATION) for t in range(tests)],
            axis=1,
        )
        p = np.concatenate([p, np.ones((simulations, padding))], axis=1)
        decided = holm_rows(p)[:, :tests] < alpha
        right_way = np.sign(sample.mean(1)) == observed_sign
        power[row] = (decided & right_way).mean(0)
    return power


def minimum_detectable_effect(
    differences: np.ndarray,
    level: float,
    simulations: int = SIMULATIONS,
    seed: int = 0,
) -> float:
    """Smallest shift of the observed spread that an n-seed study detects with 80% power.

    The centred differences are shifted by delta and resampled (n seeds, as observed); the
    test is the exact sign-flip at `level` (alpha / family size: Holm's first, strictest
    step). Returns delta on the test's scale (NaN if even 6 SDs are not enough).
    """
    d = np.asarray(differences, dtype=np.float64)
    n, sd = len(d), float(np.std(d, ddof=1)) if len(d) > 1 else math.nan
    if not sd > 0:
        return math.nan
    residual = d - d.mean()
    rng = np.random.default_rng(seed)
    draws = residual[rng.integers(0, n, size=(simulations, n))]
    for delta in sd * np.linspace(0.05, 6, 120):
        shifted = draws + delta
        power = ((sign_flip_p(shifted) < level) & (shifted.mean(1) > 0)).mean()
        if power >= TARGET_POWER:
            return float(delta)
    return math.nan


def seeds_for_effect(
    differences: np.ndarray,
    effect: float,
    family_size: int = 1,
    seed_counts: tuple[int, ...] = SEED_GRID,
    simulations: int = SIMULATIONS,
    alpha: float = ALPHA,
) -> tuple[int | None, np.ndarray]:
    """(fewest seeds with 80% power, the power per seed count) at a given true effect.

    effect: on the test's scale (a log ratio for ratio measures). The study's own spread is
    kept: its centred per-seed differences are shifted to `effect` and resampled, tested with
    the exact sign-flip test under Holm over family_size tests (power_curve), and counted as
    decided the way the effect points. None when no count in seed_counts reaches 80%.
    """
    d = np.asarray(differences, dtype=np.float64)
    shifted = (d - d.mean() + effect)[:, None]
    power = power_curve(shifted, seed_counts, family_size, simulations, alpha)[:, 0]
    enough = [
        c for c, p in zip(seed_counts, power, strict=True) if clears(p, simulations, TARGET_POWER)
    ]
    return (enough[0] if enough else None), power


def detectable_note(n: int, sd: float, family_size: int, alpha: float = ALPHA) -> str:
    """What is known about the detectable effect when it cannot be given as a number."""
    needed = min_seeds_for_verdict(family_size, alpha)
    if n < needed:
        return (
            f"none at n = {n}: {smallest_p_words(n)}, times "
            f"{family_size} test(s) under Holm is not below {alpha:g}; no effect, however large, "
            f"can be detected before {needed} seeds"
        )
    if not sd > 0:
        return "the differences do not vary: any nonzero effect of this spread is detected"
    return "more than 6 SDs of the differences: too noisy at this n"


def effect_on_scale(claim, effect: float) -> float:  # noqa: ANN001 - a config.Claim
    """An effect in the claim's units (a ratio like 1.05 for ratio metrics) on the test's scale."""
    return math.log(effect) if claim.measure.log_scale else float(effect)


def study_power(
    table: pd.DataFrame,
    baseline: str,
    variants: list[str],
    claims: list,  # config.Claim
    family_size: int,
    alpha: float = ALPHA,
    simulations: int = SIMULATIONS,
    effects: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per variant x claim with seeds needed and the detectable effect, the curves).

    Only seeds that every arm ran are used, so each simulated seed keeps all its tests.
    seeds_needed is planned at the observed effect over the pilot's sampling error
    (planning.plan_observed: at d_z's lower EFFECT_LEVEL confidence bound), with
    seeds_needed_low/high the plans at its 10% and 90% bounds (planning.observed_range) and
    effect_bound the d_z bound itself; sizable is False (seeds_needed None) when that bound is
    at or below 0: the pilot shows no effect and cannot size a study.
    effects: claim metric -> an effect to size the study for, in the claim's units (a ratio
    for ratio metrics); else the claim's own `effect` from the spec, if any. Those rows get
    effect and seeds_for_effect (None: more than the grid's largest count), planned with the
    spread at its upper confidence bound (planning.plan_seeds), and seeds_for_effect_low/high,
    the plans the pilot's sampling error allows (planning.plan_range). A count is "enough"
    only when its power clears 80% beyond its Monte Carlo error (planning.clears); power_se
    (curves) and power_now_se (rows) are those errors. An equivalence claim (direction
    equivalent, with its margin) is sized for its own question: its curve, power_now and
    seeds_needed are the TOST's (equivalence_power) at a true difference of 0, or at its effect.
    """
    effects = effects or {}
    frame, labels = _paired_frame(table, baseline, variants, claims)
    n = len(frame)
    curve = (
        power_curve(frame.to_numpy(), SEED_GRID, family_size, simulations, alpha)
        if n >= 2
        else None
    )
    true_differences = _equivalence_curves(
        frame, labels, curve, family_size, effects, simulations, alpha
    )
    rows, curves = [], []
    for index, (variant, claim) in enumerate(labels):
        row, points = _claim_power(
            variant,
            baseline,
            claim,
            frame.iloc[:, index].to_numpy() if n else np.array([]),
            curve[:, index] if curve is not None else None,
            true_differences.get(index),
            effects.get(claim.metric, getattr(claim, "effect", None)),
            family_size,
            simulations,
            alpha,
        )
        rows.append(row)
        curves.extend(points)
    return pd.DataFrame(rows), pd.DataFrame(curves)


def _paired_frame(
    table: pd.DataFrame, baseline: str, variants: list[str], claims: list
) -> tuple[pd.DataFrame, list[tuple[str, object]]]:
    """Per-seed differences, one column per (variant, claim), on the seeds every arm ran."""
    columns, labels = [], []
    for variant in variants:
        for claim in claims:
            measure = claim.measure
            pairs = paired_values(table, measure.column, baseline, variant).set_index("seed")
            columns.append(
                pd.Series(paired_differences(pairs, measure.log_scale), index=pairs.index)
            )
            labels.append((variant, claim))
    return (pd.concat(columns, axis=1).dropna() if columns else pd.DataFrame()), labels


def _equivalence_curves(
    frame: pd.DataFrame,
    labels: list[tuple[str, object]],
    curve: np.ndarray | None,
    family_size: int,
    effects: dict[str, float],
    simulations: int,
    alpha: float,
) -> dict[int, float]:
    """Put each equivalence claim's TOST power in its curve column (in place).

    Returns column index -> the true difference its TOST is sized at (0, or its effect).
    """
    true_differences = {}
    for index, (_, claim) in enumerate(labels):
        if claim.direction == SAME and claim.margin is not None and curve is not None:
            effect = effects.get(claim.metric, getattr(claim, "effect", None))
            true_differences[index] = 0.0 if effect is None else effect_on_scale(claim, effect)
            curve[:, index] = tost_power_curve(
                frame.iloc[:, index].to_numpy(),
                margin_on_test_scale(claim.measure, claim.margin),
                SEED_GRID,
                family_size,
                true_differences[index],
                simulations,
                alpha,
            )
    return true_differences


def _curve_points(
    variant: str,
    claim,
    column: np.ndarray,
    simulations: int,  # noqa: ANN001 - a config.Claim
) -> list[dict]:
    """The curve's points as rows, each power with its Monte Carlo standard error."""
    return [
        {
            "variant": variant,
            "claim": claim.measure.name,
            "seeds": c,
            "power": float(p),
            "power_se": float(monte_carlo_se(p, simulations)),
        }
        for c, p in zip(SEED_GRID, column, strict=True)
    ]


def _plans(
    d: np.ndarray,
    claim,  # noqa: ANN001 - a config.Claim
    effect: float | None,
    true_difference: float | None,
    family_size: int,
    simulations: int,
    alpha: float,
) -> dict:
    """The row's plans: seeds needed at the observed effect (or, for an equivalence claim, the
    TOST's at its true difference) with their range, and the seeds for a named effect with
    theirs. A count of None: more than the grid's largest."""
    plans = {
        "effect_bound": dz_bound(d, EFFECT_LEVEL) if len(d) >= 2 else math.nan,
        "sizable": True,  # False only when the pilot's bound of its effect is at or below 0
        "seeds_needed": None,
        "seeds_needed_low": None,
        "seeds_needed_high": None,
        "seeds_for_effect": None,
        "seeds_for_effect_low": None,
        "seeds_for_effect_high": None,
    }
    if len(d) < 2:
        return plans
    options = dict(simulations=simulations, alpha=alpha)
    if effect is not None:
        on_scale = effect_on_scale(claim, effect)
        plans["seeds_for_effect"] = plan_seeds(d, on_scale, family_size, **options)
        range_ = plan_range(d, on_scale, family_size, **options)
        plans["seeds_for_effect_low"], plans["seeds_for_effect_high"] = range_
    if true_difference is None:
        # The observed effect, planned at its lower confidence bound (one planner with the
        # named effect's: planning.plan_at); none when the pilot shows no effect.
        plans["sizable"] = bound_effect(d) is not None
        if plans["sizable"]:
            plans["seeds_needed"] = plan_observed(d, family_size, **options)
            range_ = observed_range(d, family_size, **options)
            plans["seeds_needed_low"], plans["seeds_needed_high"] = range_
        return plans
    # Seeds to show equivalence at the true difference (0, or the named effect), the spread
    # at its upper bound as for a named effect: the question is the TOST's.
    margin = margin_on_test_scale(claim.measure, claim.margin)
    needed = plan_equivalence(d, margin, family_size, true_difference, **options)
    range_ = equivalence_range(d, margin, family_size, true_difference=true_difference, **options)
    plans["effect_bound"], plans["sizable"] = math.nan, True
    plans["seeds_needed"] = needed
    plans["seeds_needed_low"], plans["seeds_needed_high"] = range_
    if effect is not None:
        plans["seeds_for_effect"] = needed
        plans["seeds_for_effect_low"], plans["seeds_for_effect_high"] = range_
    return plans


def _claim_power(
    variant: str,
    baseline: str,
    claim,  # noqa: ANN001 - a config.Claim
    d: np.ndarray,
    column: np.ndarray | None,
    true_difference: float | None,
    effect: float | None,
    family_size: int,
    simulations: int,
    alpha: float,
) -> tuple[dict, list[dict]]:
    """One row of study_power for a (variant, claim), and its curve's points."""
    measure = claim.measure
    n = len(d)
    points = _curve_points(variant, claim, column, simulations) if column is not None else []
    mde = minimum_detectable_effect(d, alpha / family_size, simulations) if n >= 2 else math.nan
    to_scale = math.exp if measure.log_scale else (lambda x: x)
    sd = float(np.std(d, ddof=1)) if n > 1 else math.nan
    plans = _plans(d, claim, effect, true_difference, family_size, simulations, alpha)
    now = np.interp(n, SEED_GRID, column) if column is not None else None
    row = {
        "variant": variant,
        "baseline": baseline,
        "claim": measure.name,
        "n": n,
        "observed": to_scale(float(d.mean())) if n else math.nan,
        "sd": sd,
        "power_now": float(now) if now is not None else math.nan,
        "power_now_se": float(monte_carlo_se(now, simulations)) if now is not None else math.nan,
        "detectable": to_scale(mde) if math.isfinite(mde) else math.nan,
        "detectable_note": "" if math.isfinite(mde) else detectable_note(n, sd, family_size),
        "effect": math.nan if effect is None else float(effect),
        **plans,
        "estimate_kind": "ratio" if measure.log_scale else "difference",
        "note": power_note(n, plans["seeds_needed"], plans["sizable"]),
    }
    return row, points


NOT_SIZABLE = (
    "The pilot cannot size the study: the lower {level:.0%} confidence bound of its effect is at "
    "or below 0, so it has not shown an effect in either direction. Name the effect you care "
    "about with --effect (in the claim's units) and power sizes the study for it."
)


def power_note(n: int, needed: int | None, sizable: bool = True) -> str:
    """A row's caveat in words: too few seeds, no effect shown, or more seeds than the grid."""
    if n < 2:
        return f"{n} paired seed(s): too few to estimate anything; run at least {RELIABLE_PILOT}."
    if n < RELIABLE_PILOT:
        return (
            f"Only {n} paired seeds: resampling {n} values is too crude to size a study; "
            f"treat this as a rough guess and rerun power after {RELIABLE_PILOT} or more seeds."
        )
    if not sizable:
        return NOT_SIZABLE.format(level=EFFECT_LEVEL)
    if needed is None:
        return (
            f"Even {SEED_GRID[-1]} seeds do not reach {TARGET_POWER:.0%} power at the lower "
            f"{EFFECT_LEVEL:.0%} bound of the observed effect: it is too small, or this pilot "
            "too unsure of it, to settle with seeds alone (the range shows what it allows)."
        )
    return ""
