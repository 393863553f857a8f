"""Rankings of three or more arms: ranks with seeds as blocks, Friedman's test, every pair under
one Holm family, the probability of improvement and the groups of a critical-difference figure,
each checked against an independent computation (scipy, statsmodels, by hand)."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from mnistlab.stats.analysis import paired_test
from mnistlab.stats.ranking import (
    apart,
    block_ranks,
    complete_blocks,
    friedman,
    indistinct_groups,
    pair_p_values,
    rank_arms,
)
from mnistlab.stats.verdicts import Verdict


def table_of(values: dict[str, list[float]], column: str = "test_accuracy") -> pd.DataFrame:
    """A per-run table: one row per arm and seed with the measure."""
    return pd.DataFrame(
        [
            {"run_id": f"{arm}-{seed}", "arm": arm, "seed": seed, column: value}
            for arm, per_seed in values.items()
            for seed, value in enumerate(per_seed)
        ]
    )


def noisy(k: int, n: int, shifts: list[float], seed: int = 0) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    block = rng.normal(0.98, 0.003, n)  # a seed's own level, shared by every arm
    return {f"arm{j}": list(block + shifts[j] + rng.normal(0, 0.001, n)) for j in range(k)}


def test_ranks_within_each_seed_by_hand_best_is_one_and_ties_share():
    values = np.array([[0.90, 0.95, 0.93], [0.91, 0.91, 0.97]])
    assert block_ranks(values, "higher").tolist() == [[3, 1, 2], [2.5, 2.5, 1]]
    assert block_ranks(values, "lower").tolist() == [[1, 3, 2], [1.5, 1.5, 3]]
    # a threshold never reached (inf) is the worst when fewer steps are better
    assert block_ranks(np.array([[300, np.inf, 200]]), "lower").tolist() == [[2, 3, 1]]


@pytest.mark.parametrize("seed", range(4))
def test_friedman_equals_scipy_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(9, 4))
    if seed % 2:
        values = np.round(values)  # many ties within seeds
    ranks = block_ranks(values, "higher")
    statistic, p = friedman(ranks)
    reference = stats.friedmanchisquare(*values.T)
    assert statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert p == pytest.approx(reference.pvalue, rel=1e-10)


def test_every_pair_is_one_holm_family_as_statsmodels_computes_it():
    ranking = rank_arms(
        table_of(noisy(4, 10, [0, 0.002, 0.0005, 0.004])),
        ["arm0", "arm1", "arm2", "arm3"],
        "test_accuracy",
        "higher",
    )
    pairs = ranking.pairs
    assert len(pairs) == 6 and ranking.family_size == 6
    _, reference, _, _ = multipletests(pairs["p_value"], method="holm")
    np.testing.assert_allclose(pairs["p_holm"], reference, rtol=1e-12)
    # every pair once, the better-ranked arm first
    assert {frozenset(p) for p in zip(pairs["variant"], pairs["baseline"], strict=True)} == {
        frozenset(p) for p in itertools.combinations(ranking.arms, 2)
    }
    for row in pairs.itertuples():
        assert ranking.arms.index(row.variant) < ranking.arms.index(row.baseline)


def test_each_pair_is_the_exact_paired_test_scipy_computes_with_its_inverted_interval():
    values = noisy(3, 8, [0, 0.001, 0.003], seed=3)
    ranking = rank_arms(table_of(values), list(values), "test_accuracy", "higher")
    row = ranking.pairs.iloc[0]
    d = np.array(values[row["variant"]]) - np.array(values[row["baseline"]])
    reference = stats.permutation_test(
        (d,), np.mean, permutation_type="samples", n_resamples=np.inf
    )
    assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    test = paired_test(d)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((test.ci_low, test.ci_high))
    assert row["estimate"] == pytest.approx(d.mean())


def test_mean_ranks_and_probability_of_improvement_by_hand():
    values = {
        "a": [1.0, 2.0, 3.0, 4.0, 5.0],
        "b": [2.0, 1.0, 4.0, 5.0, 6.0],  # beats a on 4 of 5 seeds
        "c": [0.0, 0.0, 0.0, 0.0, 0.0],
    }
    ranking = rank_arms(table_of(values), list(values), "test_accuracy", "higher")
    assert ranking.arms == ["b", "a", "c"]
    assert ranking.mean_ranks == pytest.approx({"b": 1.2, "a": 1.8, "c": 3.0})
    row = ranking.pairs.set_index(["variant", "baseline"]).loc[("b", "a")]
    assert row["p_beats"] == pytest.approx(0.8)
    # Wilson's 95% interval for 4 of 5, from its formula
    z, n, share = stats.norm.ppf(0.975), 5, 0.8
    centre = (share + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(share * (1 - share) / n + z**2 / (4 * n**2))
    assert (row["p_beats_low"], row["p_beats_high"]) == pytest.approx(
        (centre - half, centre + half)
    )


def test_apart_is_the_decision_analysis_makes_for_the_ranking():
    rng = np.random.default_rng(7)
    outcomes = []
    for study in range(20):
        k = 3 + study % 3
        shifts = list(rng.normal(0, 0.0015, k))
        values = noisy(k, 10, shifts, seed=study)
        arms = list(values)
        ranking = rank_arms(table_of(values), arms, "test_accuracy", "higher")
        matrix = np.array([values[a] for a in arms]).T[None]  # (1, seeds, arms)
        p = pair_p_values(matrix)[0]
        vectorised = apart(p[None])[0]
        decided = {
            frozenset((r.variant, r.baseline)): r.verdict == Verdict.DIFFERS
            for r in ranking.pairs.itertuples()
        }
        for (i, j), separated in zip(itertools.combinations(range(k), 2), vectorised, strict=True):
            assert decided[frozenset((arms[i], arms[j]))] == separated
            outcomes.append(bool(separated))
    assert 0 < sum(outcomes) < len(outcomes)  # both verdicts were compared


def test_groups_are_the_maximal_runs_in_rank_order_with_no_pair_apart():
    order = ["a", "b", "c", "d"]
    apart_ = {frozenset(p) for p in [("a", "c"), ("a", "d"), ("b", "d")]}
    assert indistinct_groups(order, apart_) == [["a", "b"], ["b", "c"], ["c", "d"]]
    assert indistinct_groups(order, set()) == [order]
    everything = {frozenset(p) for p in itertools.combinations(order, 2)}
    assert indistinct_groups(order, everything) == []
    # a and c not apart, but b is apart from both: no bar may jump over b
    assert indistinct_groups(["a", "b", "c"], {frozenset("ab"), frozenset("bc")}) == []


def test_a_run_that_never_reached_the_threshold_ranks_last_and_only_complete_seeds_count():
    table = table_of(
        {"a": [100, 200, 300], "b": [150, 250, 350], "c": [120, 900, 900]},
        column="steps_to_0.95",
    )
    table["reached_0.95"] = True
    table.loc[(table["arm"] == "c") & (table["seed"] == 1), "reached_0.95"] = False
    table = pd.concat([table, table_of({"a": [0, 0, 0, 50]}, "steps_to_0.95").iloc[[3]]])
    blocks = complete_blocks(table, "steps_to_0.95", ["a", "b", "c"], "reached_0.95")
    assert blocks.index.tolist() == [0, 1, 2]  # seed 3 has only arm a
    assert blocks.loc[1, "c"] == np.inf
    ranking = rank_arms(table, ["a", "b", "c"], "steps_to:0.95", "lower")
    assert ranking.mean_ranks["c"] == pytest.approx((2 + 3 + 3) / 3)


def test_fewer_than_three_arms_are_no_ranking():
    with pytest.raises(ValueError, match="at least 3 arms"):
        rank_arms(
            table_of({"a": [1.0, 2.0], "b": [2.0, 3.0]}), ["a", "b"], "test_accuracy", "higher"
        )
