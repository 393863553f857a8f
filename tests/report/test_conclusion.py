"""The report's Conclusion on a study whose answer is known by construction: runs written to
the store by hand, so every number is chosen."""

import numpy as np
import pytest
from typer.testing import CliRunner

from mnistlab.cli.app import app
from mnistlab.report.render import write_report
from mnistlab.results.evidence import analyse, power_analysis
from mnistlab.spec.parse import parse_spec
from mnistlab.spec.record import to_record
from mnistlab.store.store import open_store
from mnistlab.store.tracked_run import TrackedRun
from tests.conftest import SECTIONS

SETTINGS = {"train_size": 1000, "batch_size": 50, "eval_every": 2, "eval_subset": 100}
# Steps to 0.9 and 0.95, train seconds per step, final accuracy, loss noise per arm.
TRUTH = {"cnn2": (8, 14, 0.010, 0.950, 0.02), "cnn3": (4, 8, 0.030, 0.970, 0.2)}


def write_study(store_uri, tmp_path, seeds=8):
    spec = parse_spec(
        {
            "name": "known",
            "models": ["cnn2", "cnn3"],
            "seeds": seeds,
            "thresholds": [0.9, 0.95],
            "settings": SETTINGS,
        },
        tmp_path / "known.toml",
    )
    store = open_store(store_uri)
    experiment_id = store.experiment_id("known")
    store.record_spec(experiment_id, to_record(spec))
    rng = np.random.default_rng(0)
    for planned in spec.planned_runs():
        to_90, to_95, per_step, accuracy, noise = TRUTH[planned.arm]
        seed = planned.config.seed
        tags = {
            "model": planned.arm,
            "seed": str(seed),
            "config_hash": planned.config.config_hash(),
        }
        with TrackedRun(store, experiment_id, planned.name, {}, tags) as run:
            steps = list(range(0, 20, 2))
            jitter = 1 + 0.05 * rng.random()
            curve = [0.5 if s < to_90 else 0.92 if s < to_95 else 0.96 for s in steps]
            run.log("eval_accuracy", curve, steps)
            run.log("train_seconds", [s * per_step * jitter for s in steps], steps)
            losses = np.exp(-np.arange(20) / 8) * np.exp(rng.normal(0, noise, 20))
            run.log("train_loss", losses.tolist(), range(20))
            run.log("epoch_train_seconds", [20 * per_step * jitter], [0])
            run.log("test_accuracy", [accuracy + 0.001 * seed + 0.0005 * rng.random()], [19])
    return store


def test_the_conclusion_answers_the_papers_question_with_the_constructed_numbers(
    tmp_path, store_uri
):
    store = write_study(store_uri, tmp_path)
    results = analyse(store, "known")
    assert results.verdicts["verdict"].tolist() == ["supported"] * 3
    clock = results.wall_clock.set_index(["arm", "threshold"])
    assert (
        clock.loc[("cnn2", 0.9), "median_steps"] == 8
        and clock.loc[("cnn3", 0.9), "median_steps"] == 4
    )
    # 4 steps at 30 ms against 8 at 10 ms: cnn3 needs 1.5x the train time to 90%.
    ratio = results.wall_clock_comparisons.set_index("claim").loc["seconds_to:0.9", "estimate"]
    assert ratio == pytest.approx(1.5, rel=0.05)
    html = write_report(results, None, "", tmp_path / "r", power_analysis(results)).html.read_text()
    text = " ".join(html.split())
    assert [s for s in SECTIONS if s in html] == SECTIONS
    assert "cnn3's fewer steps do not outweigh its slower steps at 90%, 95%" in text
    assert "After the whole budget, cnn3's test accuracy is 2 points higher" in text
    assert "does not follow: it buys accuracy, though not speed to 90%, 95%" in text
    assert (
        text.index("1. Conclusion")
        < text.index("The paper's question.")
        < text.index("2. The question")
    )
    assert "Total compute</th><td>16 runs (16 finished)" in text


def test_power_on_a_three_seed_pilot_says_it_is_rough(tmp_path, store_uri):
    write_study(store_uri, tmp_path, seeds=3)
    result = CliRunner().invoke(app, ["power", "known", "--tracking-uri", store_uri])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "seeds needed for 80% power" in text and "Only 3 paired seeds" in text
