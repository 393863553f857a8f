"""The bench's arithmetic and its check that the fast loop keeps the paper's math."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mnistlab.spec.run import RunConfig
from mnistlab.training.loop import train

spec = importlib.util.spec_from_file_location(
    "bench", Path(__file__).resolve().parents[1] / "bench" / "bench.py"
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_flops_are_counted_from_the_layer_shapes():
    conv1, conv2, conv3 = 2 * 25 * 16 * 28 * 28, 2 * 16 * 25 * 32 * 14 * 14, 2 * 32 * 25 * 64 * 49
    rest2, rest3 = conv2 + 2 * 32 * 49 * 10, conv2 + conv3 + 2 * 64 * 49 * 10
    # Training: forward, weight gradient and input gradient, but no input gradient for conv1.
    assert bench.flops_per_image("cnn2") == (conv1 + rest2, 2 * conv1 + 3 * rest2)
    assert bench.flops_per_image("cnn3") == (conv1 + rest3, 2 * conv1 + 3 * rest3)


def test_an_epoch_of_cnn2_costs_what_the_design_notes_say():
    forward, training = bench.flops_per_image("cnn2")
    epoch = training * 60000 + forward * 2000 * 24  # 1,200 steps, evaluated every 50
    assert epoch / 1e12 == pytest.approx(1.25, abs=0.01)


@pytest.mark.parametrize("model", ["cnn2", "cnn3"])
def test_the_fast_loop_matches_the_papers_layer_order_in_a_plain_loop(model, tiny_mnist):
    config = RunConfig(
        model=model, seed=1, train_size=200, batch_size=20, eval_subset=100, device="cpu"
    )
    reference = bench.reference_losses(config, tiny_mnist, steps=bench.CHECK_STEPS)
    fast = train(config, tiny_mnist).train_loss[: bench.CHECK_STEPS]
    np.testing.assert_allclose(fast, reference, rtol=bench.CHECK_RTOL)
    assert fast[0] == pytest.approx(reference[0], rel=1e-6)  # same init, same first batch


def test_paired_ratio_is_the_median_of_per_repeat_ratios():
    seconds = {"paper": [30.0, 40.0, 33.0], "fast": [15.0, 10.0, 30.0]}
    assert bench.paired_ratio(seconds, "paper", "fast") == 2.0
    assert bench.paired_ratio(seconds, "paper", "missing") is None


@pytest.mark.parametrize("model", ["cnn2", "cnn3"])
def test_evaluation_is_checked_against_a_dense_forward_pass(model, tiny_mnist, monkeypatch):
    config = RunConfig(model=model, seed=1, train_size=200, batch_size=20, device="cpu")
    trained = train(config, tiny_mnist).model
    check = bench.evaluation_matches_reference(trained, tiny_mnist)
    assert check["ok"] and check["images"] == len(tiny_mnist.test_labels)
    assert check["accuracy"] == check["reference_accuracy"]

    real_predict = bench.predict  # a wrong evaluation must be caught
    monkeypatch.setattr(bench, "predict", lambda m, images: (real_predict(m, images) + 1) % 10)
    assert not bench.evaluation_matches_reference(trained, tiny_mnist)["ok"]


def test_the_benchs_synthetic_study_is_analysed_like_a_trained_one(store_uri):
    """The waits bench times analyze and report on these stores: they must be real studies."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from synthetic_study import build_study

    from mnistlab.results.evidence import analyse
    from mnistlab.store.store import open_store

    store = open_store(store_uri)
    build_study(store, "experiments/paper.toml", 3)
    results = analyse(store, "paper")
    assert len(results.runs) == 6 and not results.excluded
    assert set(results.history["key"]) >= {"train_loss", "eval_accuracy", "epoch_train_seconds"}
    assert results.history.groupby("run_id").size().min() >= 1200  # a loss point per step
    assert store.download_predictions(results.runs["run_id"][0], Path(store_uri[10:]).parent)
