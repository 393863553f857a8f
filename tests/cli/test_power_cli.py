"""`mnistlab power`'s default answer, the seeds at the observed effect, as a user reads it: with
the range the pilot's sampling error allows, or, when the pilot shows no effect, a plain
sentence saying so and naming --effect (never nan, never a traceback); and `power --help`
states the rule. Runs are written to the store by hand, so every difference is chosen."""

import numpy as np
import pytest

from mnistlab.spec.parse import parse_spec
from mnistlab.spec.record import to_record
from mnistlab.stats.planning import EFFECT_LEVEL
from mnistlab.store.store import open_store
from mnistlab.store.tracked_run import TrackedRun
from tests.conftest import flat, invoke

SETTINGS = {"train_size": 1000, "batch_size": 50, "eval_every": 2, "eval_subset": 100}
NO_EFFECT = [
    0.002,
    -0.003,
    0.001,
    -0.001,
    0.0025,
    -0.002,
]  # the variant's accuracy minus the baseline's
CLEAR = [0.004, 0.006, 0.003, 0.005, 0.007, 0.004]


def write_pilot(store_uri, tmp_path, differences):
    """A study `pilot` of cnn2 (baseline) against cnn3 with one claim, cnn3's test accuracy
    higher, whose per-seed differences are `differences`."""
    spec = parse_spec(
        {
            "name": "pilot",
            "models": ["cnn2", "cnn3"],
            "seeds": len(differences),
            "claims": [{"metric": "test_accuracy", "direction": "higher"}],
            "settings": SETTINGS,
        },
        tmp_path / "pilot.toml",
    )
    store = open_store(store_uri)
    experiment_id = store.experiment_id("pilot")
    store.record_spec(experiment_id, to_record(spec))
    for planned in spec.planned_runs():
        seed = planned.config.seed
        tags = {
            "model": planned.arm,
            "seed": str(seed),
            "config_hash": planned.config.config_hash(),
        }
        shift = differences[seed - min(r.config.seed for r in spec.planned_runs())]
        accuracy = 0.95 + (shift if planned.arm == "cnn3" else 0.0)
        with TrackedRun(store, experiment_id, planned.name, {}, tags) as run:
            steps = list(range(0, 20, 2))
            run.log("eval_accuracy", [0.5 if s < 8 else 0.96 for s in steps], steps)
            run.log("train_seconds", [s * 0.01 for s in steps], steps)
            run.log("train_loss", np.exp(-np.arange(20) / 8).tolist(), range(20))
            run.log("epoch_train_seconds", [0.2], [0])
            run.log("test_accuracy", [accuracy], [19])


def test_a_pilot_that_shows_no_effect_says_it_cannot_size_the_study(tmp_path, store_uri):
    write_pilot(store_uri, tmp_path, NO_EFFECT)
    result = invoke("power", "pilot", "--tracking-uri", store_uri)
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "none: the pilot shows no effect" in text
    assert "The pilot cannot size the study" in text and "--effect" in text
    assert f"lower {EFFECT_LEVEL:.0%} confidence bound of its effect is at or below 0" in text
    assert "nan" not in text.lower().split() and "Traceback" not in result.output
    # naming the effect sizes it, with the range the pilot's error allows
    result = invoke("power", "pilot", "--tracking-uri", store_uri, "--effect", "0.004")
    assert result.exit_code == 0, result.output
    assert "(at 0.004; the pilot's error allows" in flat(result.output)


def test_a_pilot_with_an_effect_gets_seeds_with_their_range(tmp_path, store_uri):
    write_pilot(store_uri, tmp_path, CLEAR)
    result = invoke("power", "pilot", "--tracking-uri", store_uri)
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "the pilot's error allows" in text and "cannot size" not in text
    assert f"planned at the lower {EFFECT_LEVEL:.0%} confidence bound" in text


@pytest.mark.parametrize(
    "phrase",
    ["lower 70% confidence bound", "d_z", "noncentral t", "safeguard power analysis", "--effect"],
)
def test_power_help_states_the_rule(phrase):
    assert EFFECT_LEVEL == 0.7  # the help's words name this level
    result = invoke("power", "--help")
    assert result.exit_code == 0 and phrase in flat(result.output)
