"""A run's measures from its histories (results.features), on hand-made histories small enough
to check by hand."""

import numpy as np
import pandas as pd
import pytest

from mnistlab.results.features import (
    fraction_reached,
    loss_fluctuation,
    per_run_table,
    steps_to_threshold,
)
from mnistlab.spec.measures import FIXED


def evals(*runs: tuple[str, list[float]]) -> pd.DataFrame:
    rows = [
        {"run_id": run_id, "step": 50 * i, "value": value}
        for run_id, values in runs
        for i, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_steps_to_threshold_is_the_first_evaluation_at_or_above_it():
    reach = steps_to_threshold(evals(("a", [0.5, 0.9, 0.85, 0.95]), ("b", [0.2, 0.3])), [0.9, 0.95])
    got = {(r.run_id, r.threshold): (r.steps, r.reached) for r in reach.itertuples()}
    assert got == {
        ("a", 0.9): (50, True),  # reached exactly at the threshold, kept after a dip
        ("a", 0.95): (150, True),
        ("b", 0.9): (50, False),  # never reached: censored at its last step, not dropped
        ("b", 0.95): (50, False),
    }


def test_fraction_reached_counts_censored_runs_in_the_denominator():
    reach = steps_to_threshold(evals(("a", [0.5, 0.9]), ("b", [0.2, 0.3])), [0.9])
    runs = pd.DataFrame({"run_id": ["a", "b"], "arm": ["m", "m"]})
    fractions = fraction_reached(reach, runs, np.array([0, 50]))
    assert fractions["fraction"].tolist() == [0.0, 0.5]


def test_loss_fluctuation_separates_noise_from_trend():
    steps = np.arange(1200)
    trend = 2.0 * np.exp(-steps / 200) + 0.05
    rng = np.random.default_rng(0)
    quiet = trend * np.exp(rng.normal(0, 0.1, steps.size))
    noisy = trend * np.exp(rng.normal(0, 0.3, steps.size))
    assert loss_fluctuation(trend)[0] == pytest.approx(0.0, abs=1e-3)  # a clean trend: no noise
    assert loss_fluctuation(quiet)[0] == pytest.approx(0.1, rel=0.15)
    assert loss_fluctuation(noisy)[0] == pytest.approx(0.3, rel=0.15)
    assert loss_fluctuation(trend)[1] > 0  # the raw rolling SD mostly measures the trend


def test_per_run_table_from_a_hand_made_history():
    history = pd.DataFrame(
        [
            ("r", "eval_accuracy", 0, 0.5),
            ("r", "eval_accuracy", 50, 0.96),
            ("r", "epoch_train_seconds", 0, 12.0),
            ("r", "test_accuracy", 99, 0.97),
        ]
        + [("r", "train_loss", s, 1.0 / (s + 1)) for s in range(100)],
        columns=["run_id", "key", "step", "value"],
    )
    runs = pd.DataFrame({"run_id": ["r"], "arm": ["cnn2"], "seed": [0]})
    row = per_run_table(runs, history, [0.9, 0.99]).iloc[0]
    assert (row["steps_to_0.9"], row["reached_0.9"]) == (50, True)
    assert (row["steps_to_0.99"], row["reached_0.99"]) == (50, False)
    assert row["epoch_train_seconds"] == 12.0 and row["seconds_per_step"] == pytest.approx(0.12)
    assert row["test_accuracy"] == 0.97 and row["log_loss_spread"] >= 0


def test_per_run_table_has_every_catalogue_measure():
    history = pd.DataFrame(
        [
            ("r", "eval_accuracy", 0, 0.5),
            ("r", "eval_accuracy", 50, 0.96),
            ("r", "eval_accuracy", 99, 0.97),
            ("r", "train_seconds", 0, 0.1),
            ("r", "train_seconds", 50, 5.0),
            ("r", "train_seconds", 99, 9.0),
            ("r", "epoch_train_seconds", 0, 9.0),
            ("r", "test_accuracy", 99, 0.97),
            ("r", "test_loss", 99, 0.08),
        ]
        + [("r", "train_loss", s, float(s % 10)) for s in range(100)],
        columns=["run_id", "key", "step", "value"],
    )
    runs = pd.DataFrame({"run_id": ["r"], "arm": ["x"], "seed": [0]})
    row = per_run_table(runs, history, [0.9, 0.99]).iloc[0]
    assert row["seconds_to_0.9"] == 5.0  # the train seconds logged where 0.9 was first reached
    assert (row["seconds_to_0.99"], row["reached_0.99"]) == (9.0, False)  # censored at the end
    assert row["final_train_loss"] == pytest.approx(4.5)  # mean of steps 90..99: 0..9
    assert row["test_loss"] == 0.08
    for name in FIXED:
        assert name in row.index
