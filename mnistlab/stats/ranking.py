"""Which arm is best: a ranking of three or more arms on one measure, seeds as blocks.

Per seed the arms are ranked (1 = best, ties share their average rank); the mean ranks order
the arms, and Friedman's test asks whether any arm ranks apart from the others. Every pair of
arms is then compared with the study's exact paired sign-flip test (analysis.paired_evidence,
two-sided), and all pairs form ONE Holm family (analysis.decide), so the chance of any false
"ranked apart" verdict is at most alpha however many arms there are (Holm 1979; shown by
simulation in tests/integration/test_ranking_simulation.py). Arms that cannot be told apart
are joined as in a critical-difference diagram (Demsar 2006; Benavoli et al. 2016 replaced
its Nemenyi test by pairwise tests with Holm, as here): maximal runs of arms, consecutive in
mean rank, with no pair among them ranked apart. The share of seeds on which one arm beats
another (a probability of improvement, as rliable reports it) comes with its Wilson interval
(analysis.probability_of_beating).

Censored values (a threshold never reached) rank as worse than any reached value: a run that
never got there needed more steps than any run that did, at the same schedule.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mnistlab import names
from mnistlab.spec.measures import EITHER, HIGHER, LOWER
from mnistlab.spec.study import Claim
from mnistlab.stats.analysis import paired_evidence, probability_of_beating
from mnistlab.stats.decisions import ALPHA, decide
from mnistlab.stats.multiplicity import holm_rows
from mnistlab.stats.signflip import sign_flip_p
from mnistlab.stats.verdicts import Verdict

BETTER = (HIGHER, LOWER)
MIN_ARMS = 3  # two arms are a claim, not a ranking


def block_ranks(values: np.ndarray, better: str) -> np.ndarray:
    """Ranks within each seed: values (..., seeds, arms) -> ranks of the same shape, 1 = best.

    better: HIGHER or LOWER. Ties share their average rank; inf (not reached) is a value like
    any other, the largest."""
    v = np.asarray(values, dtype=np.float64)
    return stats.rankdata(-v if better == HIGHER else v, axis=-1)


def friedman(ranks: np.ndarray) -> tuple[float, float]:
    """Friedman's chi-square and its p from per-seed ranks (seeds, arms), ties corrected.

    Q = 12 n / (k (k + 1)) * sum_j (R_j - (k + 1) / 2)^2 over the arms' mean ranks R_j,
    divided by 1 - sum(t^3 - t) / (n k (k^2 - 1)) over the tie groups t within seeds
    (Hollander & Wolfe); p from chi-square with k - 1 degrees of freedom. NaN when every seed
    ties every arm or n < 2. Equals scipy.stats.friedmanchisquare (tested)."""
    r = np.asarray(ranks, dtype=np.float64)
    n, k = r.shape
    if n < 2 or k < 2:
        return math.nan, math.nan
    mean_ranks = r.mean(0)
    q = 12 * n / (k * (k + 1)) * float(((mean_ranks - (k + 1) / 2) ** 2).sum())
    ties = sum(
        float((counts**3 - counts).sum())
        for counts in (np.unique(row, return_counts=True)[1] for row in r)
    )
    correction = 1 - ties / (n * k * (k * k - 1))
    if correction <= 0:
        return math.nan, math.nan
    statistic = q / correction
    return statistic, float(stats.chi2.sf(statistic, k - 1))


def arm_pairs(k: int) -> list[tuple[int, int]]:
    """Every pair of k arms once, (i, j) with i < j: k (k - 1) / 2 of them."""
    return list(itertools.combinations(range(k), 2))


def pair_p_values(values: np.ndarray, exact_up_to: int = 16) -> np.ndarray:
    """Two-sided exact sign-flip p of every pair, vectorised over studies.

    values: (studies, seeds, arms) without censoring. Returns (studies, pairs), pairs in
    arm_pairs order; the test is signflip.sign_flip_p, the one paired_test runs."""
    v = np.asarray(values, dtype=np.float64)
    studies, seeds, k = v.shape
    pairs = arm_pairs(k)
    d = np.stack([v[:, :, j] - v[:, :, i] for i, j in pairs], axis=1)  # (studies, pairs, seeds)
    p = sign_flip_p(d.reshape(-1, seeds), exact_up_to=exact_up_to)
    return p.reshape(studies, len(pairs))


def apart(p_values: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Which pairs are ranked apart: Holm over each row's pairs (one family), p_holm < alpha.

    p_values (studies, pairs) -> bool of the same shape. The decision analysis.decide makes
    for a ranking's frame (its verdict 'differs'), in the vectorised form simulations need;
    a test checks the two agree."""
    p = np.asarray(p_values, dtype=np.float64)
    return holm_rows(p) < alpha


def indistinct_groups(order: list[str], separated: set[frozenset[str]]) -> list[list[str]]:
    """The bars of a critical-difference diagram: maximal runs of arms, consecutive in mean
    rank order, no two of which are ranked apart; runs of one arm are left out.

    order: arms from best to worst mean rank; separated: the pairs ranked apart."""
    groups: list[list[str]] = []
    for start in range(len(order)):
        end = start
        while end + 1 < len(order) and all(
            frozenset((order[i], order[end + 1])) not in separated for i in range(start, end + 1)
        ):
            end += 1
        if end > start and not any(g[-1] == order[end] for g in groups):  # else within one
            groups.append(order[start : end + 1])
    return groups


@dataclass(frozen=True)
class Ranking:
    """A ranking of arms on one measure: the reader's answer to 'which of these is best?'.

    arms: every ranked arm, best mean rank first. mean_ranks: arm -> mean rank (1 = best).
    pairs: one row per pair, better-ranked arm first ('variant' ranked better, 'baseline'
    worse), with paired_evidence's columns (estimate: variant against baseline, its interval
    the inverted exact test), decide's p_holm, verdict (DIFFERS: ranked apart) and note, and
    p_beats, p_beats_low, p_beats_high: the share of seeds on which the better-ranked arm
    beats the other, with its 95% Wilson interval. groups: arms not told apart (the bars).
    """

    metric: str
    better: str
    seeds: int
    arms: list[str]
    mean_ranks: dict[str, float]
    friedman_statistic: float
    friedman_p: float
    pairs: pd.DataFrame
    groups: list[list[str]]
    alpha: float = ALPHA
    note: str = ""

    @property
    def family_size(self) -> int:
        return len(self.pairs)


def complete_blocks(
    table: pd.DataFrame, column: str, arms: list[str], reached_column: str | None = None
) -> pd.DataFrame:
    """Seeds x arms of the measure, on the seeds every arm has (complete blocks); a value not
    reached (reached_column False) is inf, larger than any reached one."""
    values = table.pivot_table(index="seed", columns="arm", values=column, aggfunc="last")
    if reached_column and reached_column in table:
        reached = table.pivot_table(
            index="seed", columns="arm", values=reached_column, aggfunc="last"
        )
        values = values.where(reached.reindex_like(values).fillna(True).astype(bool), np.inf)
    return values.reindex(columns=arms).dropna().sort_index()


DISAGREE = (
    "Friedman's test and the pairwise tests disagree: the pairwise verdicts, under one "
    "Holm family, are the ones to act on; Friedman's test only asks whether any arm "
    "ranks apart, on ranks alone."
)


def pairwise_verdicts(
    table: pd.DataFrame, order: list[str], claim: Claim, alpha: float
) -> pd.DataFrame:
    """Every pair of arms, the better-ranked as the variant, decided under one Holm family."""
    frames = [
        paired_evidence(table, worse, [better_arm], [claim])
        for better_arm, worse in itertools.combinations(order, 2)
    ]
    return decide(pd.concat(frames, ignore_index=True), alpha)


def beating_shares(pairs: pd.DataFrame, blocks: pd.DataFrame, better: str) -> pd.DataFrame:
    """Per pair, on how many seeds the variant did better (share, its Wilson interval, in
    words), from the blocks' values (complete_blocks: a value not reached is inf, so two
    runs that never reached it give a sign unknown)."""
    way = 1 if better == HIGHER else -1
    shares = []
    for row in pairs.itertuples():
        # inf - inf is NaN: two runs that never reached it, sign unknown.
        with np.errstate(invalid="ignore"):
            signs = np.sign(blocks[row.variant].to_numpy() - blocks[row.baseline].to_numpy())
        beats = probability_of_beating(signs, way)
        shares.append((beats.share, beats.low, beats.high, beats.words()))
    return pd.DataFrame(shares, index=pairs.index)


def rank_arms(
    table: pd.DataFrame, arms: list[str], metric: str, better: str, alpha: float = ALPHA
) -> Ranking:
    """Rank the arms on a measure of the per-run table (analysis.per_run_table).

    metric: a measure's name (spec.measures); better: HIGHER or LOWER. Raises ValueError with
    fewer than MIN_ARMS arms. Only seeds that every arm ran count (seeds are the blocks), and
    the pairwise tests use those seeds too."""
    if len(arms) < MIN_ARMS:
        raise ValueError(f"a ranking needs at least {MIN_ARMS} arms, got {len(arms)}")
    claim = Claim(metric, EITHER)
    measure = claim.measure
    reached = (
        names.threshold_column(names.REACHED, measure.threshold) if measure.threshold else None
    )
    blocks = complete_blocks(table, measure.column, arms, reached)
    n = len(blocks)
    ranks = block_ranks(blocks.to_numpy(), better) if n else np.empty((0, len(arms)))
    mean_ranks = dict(zip(arms, ranks.mean(0) if n else [math.nan] * len(arms), strict=True))
    order = sorted(arms, key=lambda arm: (mean_ranks[arm], arms.index(arm)))
    statistic, p_friedman = friedman(ranks) if n else (math.nan, math.nan)
    common = table[table["seed"].isin(blocks.index) & table["arm"].isin(arms)]
    pairs = pairwise_verdicts(common, order, claim, alpha)
    pairs[["p_beats", "p_beats_low", "p_beats_high", "beats_words"]] = beating_shares(
        pairs, blocks, better
    )
    separated = {
        frozenset((row.variant, row.baseline))
        for row in pairs.itertuples()
        if row.verdict == Verdict.DIFFERS
    }
    note = ""
    if n and math.isfinite(p_friedman) and (p_friedman < alpha) != bool(separated):
        note = DISAGREE
    return Ranking(
        metric=measure.name,
        better=better,
        seeds=n,
        arms=order,
        mean_ranks={arm: float(mean_ranks[arm]) for arm in order},
        friedman_statistic=statistic,
        friedman_p=p_friedman,
        pairs=pairs,
        groups=indistinct_groups(order, separated),
        alpha=alpha,
        note=note,
    )


def simulate(
    arms: int,
    seeds: int,
    studies: int,
    best_effect: float = 0.0,
    seed: int = 0,
    alpha: float = ALPHA,
    chunk: int = 1000,
) -> tuple[float, float]:
    """(rate of any false 'ranked apart', rate of the best arm ranked above every other).

    Simulated studies of `arms` arms on `seeds` seeds, normal values whose pairwise differences
    have SD 1; the last arm is better by best_effect (a d_z), the others equal. Each study is
    decided as a ranking is (pair_p_values, then apart: the exact test, Holm over all pairs).
    A false verdict: two equal arms ranked apart, or the best ranked below another. With
    best_effect = 0 the first rate is the family-wise error under the global null.
    """
    rng = np.random.default_rng(seed)
    pairs = arm_pairs(arms)
    involves_best = np.array([j == arms - 1 for _, j in pairs])
    false, found = 0, 0
    for start in range(0, studies, chunk):
        size = min(chunk, studies - start)
        values = rng.normal(0, math.sqrt(0.5), (size, seeds, arms))
        values[:, :, -1] += best_effect
        decided = apart(pair_p_values(values), alpha)
        d = np.stack([values[:, :, j] - values[:, :, i] for i, j in pairs], axis=1).mean(2)
        best_above = d > 0  # pair (i, best): the best arm's mean is the higher
        wrong = decided & (~involves_best | ~best_above)
        false += int(wrong.any(1).sum())
        found += int((decided & best_above)[:, involves_best].all(1).sum())
    return false / studies, found / studies
