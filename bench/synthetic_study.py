"""A study's store without training: the runs a spec plans, with made-up but plausible numbers.

Analysis and report speed depend on the number of runs and metric points, not on where the
numbers came from, so the bench builds stores of any size in seconds per run instead of
training for minutes. Each run has what a real one-epoch paper run writes: the train loss
at every step, evaluation accuracy, loss and train seconds every eval_every steps, the test
metrics and epoch timings, and the tags results.py reads. Numbers are seeded: the same call
gives the same store.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mnistlab import names
from mnistlab.names import DIVERGED_TAG, N_PARAMETERS_TAG, PARENT_TAG, PREDICTIONS_FILE
from mnistlab.spec.parse import load_spec
from mnistlab.spec.study import StudySpec
from mnistlab.store.store import Store
from mnistlab.store.tracked_run import TrackedRun
from mnistlab.study.run import record_study_run
from mnistlab.study.runner import run_tags

# How each model's curves differ: (loss time constant in steps, final accuracy, s per step)
TEST_IMAGES = 10_000
SHAPES = {"cnn2": (180.0, 0.985, 0.011), "cnn3": (150.0, 0.988, 0.016)}


def with_seeds(spec: StudySpec, seeds: int) -> StudySpec:
    return dataclasses.replace(spec, seeds=tuple(range(seeds)))


def write_run(
    store: Store, experiment_id: str, study_run_id: str, study: str, planned, rng
) -> None:  # noqa: ANN001
    config = planned.config
    tau, final_accuracy, per_step = SHAPES.get(config.model, SHAPES["cnn2"])
    steps = config.steps_per_epoch() * config.epochs
    step = np.arange(steps)
    loss = 2.3 * np.exp(-step / tau) + 0.05 + rng.gamma(2.0, 0.04, steps)
    wall = np.cumsum(rng.normal(per_step, per_step / 20, steps).clip(per_step / 2))
    evals = step[:: config.eval_every]
    accuracy = final_accuracy - 0.9 * np.exp(-evals / tau) - rng.uniform(0, 0.01, len(evals))
    # The tags a real run carries, on a made-up host so that no liveness rule sees them.
    tags = {**run_tags(planned, study, "cpu", 2), "host": "bench", PARENT_TAG: study_run_id}
    params = {k: str(v) for k, v in dataclasses.asdict(config).items()}
    with TrackedRun(store, experiment_id, planned.name, params, tags) as run:
        start_ms = 1_700_000_000_000
        run.log(names.TRAIN_LOSS, loss.tolist(), step.tolist(), (start_ms + wall * 1000).tolist())
        run.log(names.EVAL_ACCURACY, accuracy.tolist(), evals.tolist())
        run.log(names.EVAL_LOSS, loss[evals].tolist(), evals.tolist())
        run.log(names.TRAIN_SECONDS, wall[evals].tolist(), evals.tolist())
        test_accuracy = final_accuracy - rng.uniform(0, 0.004)
        run.log(names.TEST_ACCURACY, [test_accuracy], [steps - 1])
        run.log(names.TEST_LOSS, [-math.log(test_accuracy)], [steps - 1])
        run.log(names.EPOCH_TRAIN_SECONDS, [float(wall[-1])], [0])
        run.log(names.EPOCH_SECONDS, [float(wall[-1]) * 1.05], [0])
        run.set_tags({DIVERGED_TAG: "false", N_PARAMETERS_TAG: "0"})
        labels = rng.integers(0, 10, TEST_IMAGES)
        wrong = rng.random(TEST_IMAGES) > test_accuracy
        run.log_array(np.where(wrong, (labels + 1) % 10, labels).astype(np.uint8), PREDICTIONS_FILE)


def build_study(store: Store, spec_path: str, seeds: int, name: str | None = None) -> StudySpec:
    """Record the spec (with `seeds` seeds, under `name`) and write its runs; returns the spec."""
    spec = with_seeds(load_spec(spec_path), seeds)
    if name:
        spec = dataclasses.replace(spec, name=name)
    experiment_id = store.experiment_id(spec.name)
    store.mark_as_training(experiment_id)  # as `mnistlab study` does
    study_run_id = record_study_run(store, experiment_id, spec)
    rng = np.random.default_rng(0)
    for planned in spec.planned_runs():
        write_run(store, experiment_id, study_run_id, spec.name, planned, rng)
    return spec
