"""Adaptive seeds: a group-sequential design that adds seeds in blocks until every claim is
decided, keeping the family-wise false-verdict rate at alpha over all looks.

Alpha is spent over the planned looks with the Lan-DeMets Pocock-type function
alpha * ln(1 + (e - 1) * t), t = seeds so far / max_seeds, at the looks that can decide:
a look where 2 / 2**n times the family is not below its share spends nothing and passes it
on (SequentialDesign.spent), and a design where no look can decide is refused.

The looks share their seeds, so their tests are correlated: a level of `spent` at each look
would, by the union bound, keep the false-verdict rate below alpha but far below it (2.95% at
alpha = 5% for the README's design). So each look tests at a nominal level computed as in
group-sequential designs (Lan and DeMets 1983; Jennison and Turnbull 2000, ch. 7 and 19): the
per-test z statistics at looks of n_1 < n_2 < ... seeds behave as a Brownian motion
(corr(Z_j, Z_k) = sqrt(n_j / n_k)), and the nominal two-sided level of look k is the one at
which the chance of a first crossing at look k, under the null, is exactly that look's
increment spent / family (Bonferroni's share of one test); up to 16 seeds, where the exact
test's p-values move in steps of 2 / 2**n, what a look's step leaves unused passes to the next
look. SequentialDesign.nominal integrates that recursion numerically (Armitage, McPherson and
Rowe 1969). At look k the claims
still open are tested with the study's own exact tests and Holm's correction at the look's
nominal level times the family; a claim once decided stays decided. A reported p is Holm's p
scaled by alpha / nominal level (so it compares with alpha); an interval is at
1 - nominal level, the level the look's decision used.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, signal, stats

from mnistlab.spec.measures import HIGHER, LOWER
from mnistlab.stats.decisions import ALPHA, OPEN, decide
from mnistlab.stats.signflip import EXACT_UP_TO, can_decide, smallest_p_words
from mnistlab.stats.verdicts import SHOWS_DIFFERENCE, Verdict


@dataclass(frozen=True)
class SequentialDesign:
    first: int  # seeds at the first look
    block: int  # seeds added per look
    max_seeds: int  # never more
    alpha: float = ALPHA
    family: int = 1  # hypotheses under Holm (difference and equivalence tests)

    def looks(self) -> list[int]:
        """Seeds at each planned look: first, first + block, ..., max_seeds."""
        counts = list(range(self.first, self.max_seeds, self.block))
        return [*counts, self.max_seeds]

    def can_decide(self, seeds: int, alpha: float) -> bool:
        """Whether a look at `seeds` pairs spending `alpha` can give any verdict: the exact
        test's smallest p, 2 / 2**seeds, times the family (Holm's first step) is below it."""
        return can_decide(seeds, self.family, alpha)

    def spent(self) -> list[float]:
        """Alpha spent at each look; they sum to alpha when the design can decide at all.

        The Pocock-type function's increments, except that a look which cannot reach a
        verdict with what it would spend (can_decide) spends nothing and passes its share on
        to the next look that can; the last look's share, if it cannot use it, goes back to
        the last look that spent. Fixed by the design, never by the data.
        """
        looks = self.looks()
        cumulative = [self.alpha * math.log(1 + (math.e - 1) * n / self.max_seeds) for n in looks]
        cumulative[-1] = self.alpha  # exactly, whatever the rounding
        spent, last = [0.0] * len(looks), 0.0
        for index, (seeds, total) in enumerate(zip(looks, cumulative, strict=True)):
            if self.can_decide(seeds, total - last):
                spent[index], last = total - last, total
        spending = [i for i, a in enumerate(spent) if a > 0]
        if spending and last < self.alpha:
            spent[spending[-1]] += self.alpha - last
        return spent

    def nominal(self) -> list[float]:
        """The family-wise level each look's tests use: 0 at looks that spend nothing.

        For one test, the two-sided nominal level a_k of look k is set so that under the null
        P(no crossing before k, |Z_k| >= z_{a_k/2}) = spent_k / family, with the z statistics
        of the spending looks correlated as sqrt(n_j / n_k) (see the module docstring). The
        first spending look's level is its spent share; later ones are larger, since a study
        still going has already passed the earlier looks. Returned as a_k * family: the level
        Holm's correction divides among the family. Fixed by the design, never by the data.
        """
        spent = self.spent()
        looks = [i for i, a in enumerate(spent) if a > 0]
        levels = crossing_levels(
            tuple(self.looks()[i] for i in looks), tuple(spent[i] / self.family for i in looks)
        )
        nominal = [0.0] * len(spent)
        for index, level in zip(looks, levels, strict=True):
            nominal[index] = min(self.alpha, level * self.family)
        return nominal

    def problem(self) -> str:
        """Why the design can never reach a verdict ('' when it can)."""
        if any(self.spent()):
            return ""
        needed = next(n for n in range(1, 64) if self.can_decide(n, self.alpha))
        return (
            f"no look can reach a verdict: with {self.family} test(s) under Holm, at the last "
            f"look {smallest_p_words(self.max_seeds)}, times {self.family} is not below alpha = "
            f"{self.alpha:g}. Raise max_seeds to at least {needed}."
        )


GRID_POINTS = 4001  # points of the density grid in crossing_levels: errors below 1e-6


@functools.lru_cache(maxsize=64)
def crossing_levels(
    seeds: tuple[int, ...], increments: tuple[float, ...], exact_up_to: int = EXACT_UP_TO
) -> list[float]:
    """Two-sided nominal levels of a group-sequential test with these error increments.

    seeds: n at each look, increasing; increments: the chance of a first false crossing at
    each look, under the null. The sum S_n of n independent standard normal differences is
    followed look by look on a grid: its sub-density over the paths not yet stopped is carried
    from one look to the next by the normal kernel of the seeds added, and each look's
    boundary b (|S_n| >= b stops) is solved so that the mass crossing there is the look's
    increment. Returns 2 * (1 - Phi(b / sqrt(n))) per look.

    Up to exact_up_to seeds the exact test's p-values are multiples of 2 / 2**n, so p < a
    rejects only at the largest multiple below a: the chance a look can really use. What it
    cannot use passes on to the next look (a design fact, known before any data), so a
    10-seed first look does not waste a quarter of its share.
    """
    if not seeds:
        return []
    half = 9.0 * math.sqrt(seeds[-1])
    grid = np.linspace(-half, half, GRID_POINTS)
    step = grid[1] - grid[0]
    weights = np.full(GRID_POINTS, step)
    weights[[0, -1]] = step / 2  # the trapezoid rule
    density, previous, levels, owed = None, 0, [], 0.0
    for n, increment in zip(seeds, increments, strict=True):
        spread = math.sqrt(n - previous)
        target = increment + owed
        mass = None if density is None else density * weights

        def crossing(b: float, mass=mass, spread=spread, n=n) -> float:
            if mass is None:
                return float(2 * stats.norm.sf(b / math.sqrt(n)))
            outside = stats.norm.sf((b - grid) / spread) + stats.norm.cdf((-b - grid) / spread)
            return float(mass @ outside)

        bound = optimize.brentq(lambda b, t=target: crossing(b) - t, 1e-9, half, xtol=1e-12)
        level = float(2 * stats.norm.sf(bound / math.sqrt(n)))
        usable = bound
        if n <= exact_up_to:  # the largest attainable p below the level, 2j / 2**n
            attainable = (math.ceil(level * 2 ** (n - 1)) - 1) * 2 / 2**n
            usable = math.sqrt(n) * stats.norm.isf(attainable / 2) if attainable > 0 else half
        owed = target - crossing(usable)
        if mass is None:
            density = stats.norm.pdf(grid, scale=math.sqrt(n))
        else:
            offsets = step * np.arange(-(GRID_POINTS - 1), GRID_POINTS)
            kernel = stats.norm.pdf(offsets / spread) / spread
            density = signal.fftconvolve(mass, kernel, mode="valid")
        density = np.where(np.abs(grid) < usable, density, 0.0)
        levels.append(level)
        previous = n
    return levels


def sequential_decide(
    evidence_by_look: list[pd.DataFrame], design: SequentialDesign
) -> pd.DataFrame:
    """Replay the looks: the final verdict rows, each from the look that decided it.

    evidence_by_look[k]: analysis.paired_evidence at look k (rows in the same order at every
    look), for the looks whose runs are all there. Adds look (1-based), seeds_at_look,
    alpha_spent, alpha_nominal (the level Holm divided) and p_sequential; a claim still open after the last look is inconclusive
    with that look's numbers.
    """
    spent, nominal = design.spent(), design.nominal()
    final: dict[int, pd.Series] = {}
    open_rows = list(range(len(evidence_by_look[0]))) if evidence_by_look else []
    for look, evidence in enumerate(evidence_by_look):
        last = look == len(evidence_by_look) - 1
        if spent[look] == 0 and not last:
            continue  # a look that cannot decide spends nothing and decides nothing
        if spent[look] > 0:
            rows = decide(evidence.iloc[open_rows], nominal[look])
        else:  # a design that can never decide (a stored one: new ones are refused)
            rows = decide(evidence.iloc[open_rows], design.alpha)
            rows = rows.assign(
                verdict=[OPEN.get(q, Verdict.INCONCLUSIVE) for q in rows["question"]],
                note=design.problem(),
            )
        rows = rows.assign(
            look=look + 1,
            seeds_at_look=design.looks()[look],
            alpha_spent=spent[look],
            alpha_nominal=nominal[look],
            p_sequential=np.minimum(1.0, rows["p_holm"] * design.alpha / nominal[look])
            if spent[look] > 0
            else 1.0,
        )
        for index, row in zip(open_rows, rows.itertuples(index=False), strict=True):
            if Verdict(row.verdict).decided or last:
                final[index] = pd.Series(row._asdict())
        open_rows = [i for i in open_rows if i not in final]
        if not open_rows:
            break
    return pd.DataFrame([final[i] for i in sorted(final)]).reset_index(drop=True)


def simulated_evidence(differences: np.ndarray, directions: np.ndarray) -> pd.DataFrame:
    """paired_evidence's decision columns for per-seed differences (n, tests), computed with the
    vectorised exact test (signflip.sign_flip_p, the test the study itself reports).
    directions: (tests,) of +1 (claimed higher) or -1 (lower)."""
    from mnistlab.stats.signflip import sign_flip_p

    d = np.asarray(differences, dtype=np.float64)
    tests = d.shape[1]
    return pd.DataFrame(
        {
            "n": len(d),
            "informative": np.count_nonzero(d, axis=0),  # ties cannot move the exact test
            "p_value": sign_flip_p(d.T),
            "p_equivalence": np.nan,
            "evidence": np.sign(d.mean(0)).astype(int),
            "direction": directions,
            "question": np.where(np.asarray(directions) > 0, HIGHER, LOWER),
            "margin": np.nan,
            "estimate_kind": "difference",
            "censored_pairs": 0,
        },
        index=range(tests),
    )


def simulate(
    design: SequentialDesign,
    effect: np.ndarray,
    directions: np.ndarray,
    studies: int,
    seed: int = 0,
) -> tuple[float, float]:
    """(rate of studies with a false verdict, mean seeds at stopping) over simulated studies.

    Per-seed differences are standard normal around `effect` (one value per test, in SD
    units); each study runs the real decision code, sequential_decide, look by look. A false
    verdict: any test with zero effect decided supported or contradicted, or any test with an
    effect decided the wrong way.
    """
    rng = np.random.default_rng(seed)
    false, seeds_used = 0, []
    for _ in range(studies):
        data = rng.normal(effect, 1.0, size=(design.max_seeds, len(effect)))
        evidence = [simulated_evidence(data[:count], directions) for count in design.looks()]
        verdicts = sequential_decide(evidence, design)  # it stops at the look deciding all
        decided = verdicts["verdict"].isin(SHOWS_DIFFERENCE).to_numpy()
        claimed_way = verdicts["verdict"].eq(Verdict.SUPPORTED).to_numpy()
        truth_way = np.sign(effect) == directions
        wrong = decided & ((effect == 0) | (claimed_way != truth_way))
        false += bool(wrong.any())
        seeds_used.append(int(verdicts["seeds_at_look"].max()))
    return false / studies, float(np.mean(seeds_used))
