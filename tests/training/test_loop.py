import numpy as np
import pytest
import torch
from torch import nn

from mnistlab.errors import NonFiniteLossError
from mnistlab.spec.run import RunConfig
from mnistlab.training import models
from mnistlab.training.loop import evaluate, predict, split_seed, train
from tests.conftest import TINY, Exploding


class RecordingSink:
    def __init__(self):
        self.metrics: dict[str, list[tuple[int, float]]] = {}
        self.flushes = 0

    def log(self, key, values, steps, timestamps_ms=None):
        self.metrics.setdefault(key, []).extend(zip(steps, values, strict=True))

    def flush(self):
        self.flushes += 1


def test_history_follows_the_papers_evaluation_schedule(tiny_mnist):
    sink = RecordingSink()
    result = train(RunConfig(epochs=2, **TINY), tiny_mnist, sink)
    assert [s for s, _ in sink.metrics["train_loss"]] == list(range(20))
    assert result.eval_steps == [0, 3, 6, 9, 12, 15, 18]
    assert [s for s, _ in sink.metrics["eval_accuracy"]] == result.eval_steps
    assert [s for s, _ in sink.metrics["test_accuracy"]] == [9, 19]
    assert [s for s, _ in sink.metrics["epoch_train_seconds"]] == [0, 1]
    assert sink.flushes == 2  # once per epoch, never per step
    cumulative = [v for _, v in sink.metrics["train_seconds"]]
    assert cumulative == sorted(cumulative) and cumulative[0] > 0


def test_training_learns_the_tiny_task(tiny_mnist):
    result = train(RunConfig(epochs=3, lr=3e-3, **TINY), tiny_mnist)
    assert result.train_loss[-5:].mean() < result.train_loss[:5].mean()
    assert result.test_accuracy[-1] > 0.5


def test_same_config_gives_a_bit_identical_loss_history(tiny_mnist):
    first = train(RunConfig(model="cnn3", seed=7, **TINY), tiny_mnist)
    second = train(RunConfig(model="cnn3", seed=7, **TINY), tiny_mnist)
    assert first.train_loss.tobytes() == second.train_loss.tobytes()
    assert first.eval_accuracy == second.eval_accuracy


def test_different_seeds_give_different_histories(tiny_mnist):
    first = train(RunConfig(seed=0, **TINY), tiny_mnist)
    second = train(RunConfig(seed=1, **TINY), tiny_mnist)
    assert not np.array_equal(first.train_loss, second.train_loss)


class BatchRecorder(nn.Module):
    """Stand-in net that remembers which images it was shown."""

    seen: list[torch.Tensor] = []

    def __init__(self, width: int):
        super().__init__()
        self.out = nn.Linear(28 * 28, 10)
        self.extra = nn.Parameter(torch.randn(width))  # different nets draw different numbers

    def forward(self, x):
        if torch.is_grad_enabled():
            BatchRecorder.seen.append(x.detach().flatten(1).sum(1).clone())
        return self.out(x.flatten(1)) + 0 * self.extra.sum()


def test_nets_with_the_same_seed_see_the_same_batches(tiny_mnist, monkeypatch):
    monkeypatch.setitem(models.MODELS, "cnn2", lambda: BatchRecorder(3))
    monkeypatch.setitem(models.MODELS, "cnn3", lambda: BatchRecorder(300))
    batches = {}
    for name in ("cnn2", "cnn3"):
        BatchRecorder.seen = []
        train(RunConfig(model=name, seed=5, **TINY), tiny_mnist)
        batches[name] = torch.cat(BatchRecorder.seen)
    assert torch.equal(batches["cnn2"], batches["cnn3"])


def test_initialisation_and_order_seeds_are_independent():
    init_seed, order_seed = split_seed(0)
    assert init_seed != order_seed
    assert split_seed(0) == (init_seed, order_seed)
    assert split_seed(1) != split_seed(0)


def test_non_finite_loss_stops_the_run_with_the_step(tiny_mnist, monkeypatch):
    monkeypatch.setitem(models.MODELS, "cnn2", Exploding)
    with pytest.raises(NonFiniteLossError, match="at step 0"):
        train(RunConfig(**TINY), tiny_mnist)


def dense_evaluation(model, images, labels):
    with torch.inference_mode():
        logits = model.eval()(images)
    return (logits.argmax(1) == labels).sum().item() / len(labels), nn.functional.cross_entropy(
        logits, labels
    ).item()


@pytest.mark.parametrize("name", ["cnn2", "cnn3"])
def test_evaluation_agrees_with_a_plain_dense_forward_pass(name):
    torch.manual_seed(0)
    model = models.build_model(name).to(memory_format=torch.channels_last)
    images, labels = torch.rand(600, 1, 28, 28), torch.randint(0, 10, (600,))
    accuracy, loss = evaluate(model, images, labels)
    assert model.training  # evaluation hands the model back in training mode
    expected_accuracy, expected_loss = dense_evaluation(model, images, labels)
    assert accuracy == expected_accuracy
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert torch.equal(predict(model, images), model(images).argmax(1))


class CumsumNet(nn.Module):
    """A net with an op (cumsum) that has no oneDNN kernel."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(28 * 28, 10)

    def forward(self, x):
        return self.out(x.flatten(1).cumsum(1) / 28)


def test_a_net_without_onednn_kernels_is_evaluated_on_dense_tensors():
    torch.manual_seed(0)
    model = CumsumNet()
    images, labels = torch.rand(300, 1, 28, 28), torch.randint(0, 10, (300,))
    assert evaluate(model, images, labels) == pytest.approx(dense_evaluation(model, images, labels))
    assert torch.equal(predict(model, images), model(images).argmax(1))
