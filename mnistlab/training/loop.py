"""One training run, from a config to metrics. It knows nothing of MLflow.

Read top to bottom: seed, load tensors, then the paper's loop (batch, Adam, evaluate
on the first `eval_subset` test images every `eval_every` steps), then a full-test
evaluation at the end of each epoch. Metrics go to a sink; NullSink runs untracked.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnistlab import names
from mnistlab.errors import NonFiniteLossError
from mnistlab.spec.run import ConfigError, RunConfig, check_recipe
from mnistlab.training.augment import build_augmenter
from mnistlab.training.datasets import ImageData, to_float_images
from mnistlab.training.models import build_model
from mnistlab.training.owndata import check_run_data
from mnistlab.training.recipe import build_optimizer, build_schedule

# Metrics go to the store at most this often (and at each epoch's end), so a run's curves
# show in the UI as it trains, at a few store calls per epoch (MNISTLAB_FLUSH_SECONDS).
FLUSH_SECONDS = float(os.environ.get("MNISTLAB_FLUSH_SECONDS", "10"))

# Images per no-grad forward pass. On CPU mid-sized chunks keep activations in cache (measured
# fastest around 200-500 on 2 cores); on a GPU one big chunk is best.
EVAL_CHUNK = {"cpu": 250, "cuda": 10000}

# Model classes with an op that has no oneDNN kernel; they are evaluated on dense tensors.
_DENSE_ONLY: set[type[nn.Module]] = set()


class MetricSink(Protocol):
    def log(
        self,
        key: str,
        values: Sequence[float],
        steps: Sequence[int],
        timestamps_ms: Sequence[int] | None = None,
    ) -> None: ...

    def flush(self) -> None: ...


class NullSink:
    """Same methods as a tracking sink, records nothing: training without tracking."""

    def log(self, key, values, steps, timestamps_ms=None) -> None:  # noqa: ANN001
        pass

    def flush(self) -> None:
        pass


@dataclass
class EvalPoint:
    step: int
    total_steps: int
    train_loss: float
    accuracy: float


@dataclass
class RunResult:
    """What a run produced, in memory; the same numbers that went to the sink."""

    config: RunConfig
    device: str
    threads: int
    train_loss: np.ndarray  # (total_steps,) float32, loss of each step's batch before its update
    eval_steps: list[int] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    epoch_train_seconds: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    model: nn.Module | None = None
    test_predictions: np.ndarray | None = None  # (test images,) uint8: the last epoch's labels


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu or auto."
        )
    return device


@dataclass(frozen=True)
class Runtime:
    """Where a run executes, once resolved and configured."""

    device: torch.device
    threads: int


def prepare_runtime(config: RunConfig) -> Runtime:
    """Resolve the device and pin torch's global settings for this config, once per run."""
    device = resolve_device(config.device)
    return Runtime(device, configure_torch(config, device))


def configure_torch(config: RunConfig, device: torch.device) -> int:
    """Pin every global setting that changes speed or numbers; returns the thread count."""
    if config.threads:
        torch.set_num_threads(config.threads)
    # Determinism over speed: reproducibility is the product.
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.get_num_threads()


def split_seed(seed: int) -> tuple[int, int]:
    """Independent seeds for initialisation and for batch order, both derived from `seed`.

    Separate generators mean two nets with the same seed see the same batches even though
    they draw different numbers of initial weights.
    """
    init_seed, order_seed = np.random.SeedSequence(seed).generate_state(2)
    return int(init_seed), int(order_seed)


def augment_seed(seed: int) -> int:
    """A third seed from `seed`, for augmentation (the first two are split_seed's, unchanged)."""
    return int(np.random.SeedSequence(seed).generate_state(3)[2])


def _logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The model's logits for a chunk of images, without autograd.

    On CPU the chunk goes through as a oneDNN (mkldnn) tensor, so every layer stays in
    oneDNN's blocked layout: its convolution kernels for that layout beat the channels-last
    ones on these small layers (conv2 of cnn2: 8.1 vs 11.3 ms per 250 images), and pooling
    skips the argmax indices that only a backward pass needs. Inside a training run,
    evaluation takes 0.72x (cnn2) and 0.74x (cnn3) the time of the dense path
    (bench/RESULTS.md) and agrees with it up to float rounding. Inference only: oneDNN
    tensors carry no autograd. A model with an op that has no oneDNN kernel falls back to
    dense tensors.
    """
    if (
        images.device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and type(model) not in _DENSE_ONLY
    ):
        try:
            logits = model(images.to_mkldnn())
            return logits.to_dense() if logits.is_mkldnn else logits
        except (RuntimeError, NotImplementedError):
            _DENSE_ONLY.add(type(model))
    return model(images)


def _chunks(images: torch.Tensor) -> list[slice]:
    size = EVAL_CHUNK.get(images.device.type, 1000)
    return [slice(start, start + size) for start in range(0, len(images), size)]


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    predictions: list[torch.Tensor] | None = None,
) -> tuple[float, float]:
    """Accuracy and mean cross-entropy over float images (N, 1, 28, 28), in large chunks.

    predictions: a list that receives each chunk's predicted labels (what `predict` gives).
    """
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=images.device)
    for part in _chunks(images):
        logits = _logits(model, images[part])
        target = labels[part]
        predicted = logits.argmax(1)
        if predictions is not None:
            predictions.append(predicted)
        correct += (predicted == target).sum()
        loss_sum += F.cross_entropy(logits, target, reduction="sum").double()
    model.train()
    return correct.item() / len(images), loss_sum.item() / len(images)


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Predicted labels (N,) for float images (N, 1, 28, 28), in the same chunks as evaluate."""
    model.eval()
    return torch.cat([_logits(model, images[part]).argmax(1) for part in _chunks(images)])


def _loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    if label_smoothing:
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    return F.cross_entropy(logits, labels)  # the paper's, unchanged


def train(
    config: RunConfig,
    data: ImageData,
    sink: MetricSink | None = None,
    on_eval: Callable[[EvalPoint], None] | None = None,
    runtime: Runtime | None = None,
) -> RunResult:
    """Train config.model on the data; raise NonFiniteLossError if the loss blows up.

    runtime: the device and threads already prepared by the caller (prepare_runtime).
    """
    sink = sink or NullSink()
    runtime = runtime or prepare_runtime(config)
    device, threads = runtime.device, runtime.threads
    check_run_data(config, data)  # an .npz dataset: its hash and sizes
    if data.dataset != config.dataset and not data.sha256:
        raise ConfigError(
            f"The run is set up for dataset {config.dataset!r} but was given {data.dataset!r}."
        )
    check_recipe(config)  # an unknown optimizer or keyword: one paragraph, before any work
    init_seed, order_seed = split_seed(config.seed)

    train_x = to_float_images(data.train_images[: config.train_size]).to(device)
    train_y = data.train_labels[: config.train_size].to(device)
    test_x = to_float_images(data.test_images).to(device)
    test_y = data.test_labels.to(device)
    eval_x, eval_y = test_x[: config.eval_subset], test_y[: config.eval_subset]

    torch.manual_seed(init_seed)
    # channels_last: oneDNN's fast convolution layout on CPU, tensor-core friendly on GPU.
    model = build_model(config.model, config.model_args, config.model_source)
    model = model.to(device, memory_format=torch.channels_last)
    steps_per_epoch = config.steps_per_epoch()
    total_steps = steps_per_epoch * config.epochs
    # The paper's Adam is fused: one kernel per step instead of a dozen small ones (2% of a
    # cnn2 step on CPU); the same update up to rounding. See training.recipe.
    optimizer = build_optimizer(config, model.parameters())
    schedule = build_schedule(config, optimizer, total_steps)  # None: a constant lr
    order = torch.Generator().manual_seed(order_seed)
    augmenter = build_augmenter(config.augment, augment_seed(config.seed))  # None: none
    # Losses stay on the device and are read in bulk at evaluations: no sync per step.
    losses = torch.empty(total_steps, dtype=torch.float32, device=device)
    step_wall_ms = np.empty(total_steps, dtype=np.int64)
    step_lr = np.empty(total_steps, dtype=np.float64)  # the lr each step's update used
    result = RunResult(config, str(device), threads, np.empty(0, dtype=np.float32))
    train_seconds_total = 0.0
    flushed_to = 0  # losses[:flushed_to] have been handed to the sink
    last_flush = time.monotonic()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def hand_losses_to_sink(upto: int) -> np.ndarray:
        nonlocal flushed_to
        chunk = losses[flushed_to:upto].cpu().numpy()
        if not np.isfinite(chunk).all():
            bad = flushed_to + int(np.argmin(np.isfinite(chunk)))
            raise NonFiniteLossError(f"train loss became {chunk[bad - flushed_to]} at step {bad}")
        steps = range(flushed_to, upto)
        sink.log(names.TRAIN_LOSS, chunk.tolist(), steps, step_wall_ms[flushed_to:upto].tolist())
        if schedule is not None or flushed_to == 0:  # a constant lr: logged once, at step 0
            lr_steps = steps if schedule is not None else range(1)
            sink.log(
                names.LEARNING_RATE, step_lr[lr_steps.start : lr_steps.stop].tolist(), lr_steps
            )
        flushed_to = upto
        return chunk

    for epoch in range(config.epochs):
        sync()
        epoch_start = segment_start = time.perf_counter()
        epoch_train_seconds = 0.0
        permutation = torch.randperm(config.train_size, generator=order).to(device)
        for index in range(steps_per_epoch):
            step = epoch * steps_per_epoch + index
            batch = permutation[index * config.batch_size : (index + 1) * config.batch_size]
            images = train_x[batch]
            if augmenter is not None:
                images = augmenter(images)
            loss = _loss(model(images), train_y[batch], config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            step_lr[step] = optimizer.param_groups[0]["lr"]
            optimizer.step()
            if schedule is not None:
                schedule.step()
            losses[step] = loss.detach()
            step_wall_ms[step] = int(time.time() * 1000)

            # The paper's schedule: evaluate after the update of every step with step % k == 0.
            if step % config.eval_every == 0 or index == steps_per_epoch - 1:
                sync()
                now = time.perf_counter()
                epoch_train_seconds += now - segment_start
                latest = hand_losses_to_sink(step + 1)[-1]
                if step % config.eval_every == 0:
                    accuracy, eval_loss = evaluate(model, eval_x, eval_y)
                    cumulative = train_seconds_total + epoch_train_seconds
                    result.eval_steps.append(step)
                    result.eval_accuracy.append(accuracy)
                    sink.log(names.EVAL_ACCURACY, [accuracy], [step])
                    sink.log(names.EVAL_LOSS, [eval_loss], [step])
                    sink.log(names.TRAIN_SECONDS, [cumulative], [step])
                    if on_eval:
                        on_eval(EvalPoint(step, total_steps, float(latest), accuracy))
                if time.monotonic() - last_flush >= FLUSH_SECONDS:
                    sink.flush()  # hands over to the sink's writer thread: no waiting here
                    last_flush = time.monotonic()
                segment_start = time.perf_counter()

        predicted: list[torch.Tensor] = []
        test_accuracy, test_loss = evaluate(model, test_x, test_y, predicted)
        sync()
        epoch_seconds = time.perf_counter() - epoch_start
        train_seconds_total += epoch_train_seconds
        last_step = (epoch + 1) * steps_per_epoch - 1
        result.epoch_train_seconds.append(epoch_train_seconds)
        result.epoch_seconds.append(epoch_seconds)
        result.test_accuracy.append(test_accuracy)
        result.test_loss.append(test_loss)
        sink.log(names.TEST_ACCURACY, [test_accuracy], [last_step])
        sink.log(names.TEST_LOSS, [test_loss], [last_step])
        sink.log(names.EPOCH_TRAIN_SECONDS, [epoch_train_seconds], [epoch])
        sink.log(names.EPOCH_SECONDS, [epoch_seconds], [epoch])
        sink.flush()
        if not math.isfinite(test_loss):
            raise NonFiniteLossError(f"test loss became {test_loss} after epoch {epoch}")

    result.train_loss = losses.cpu().numpy()
    result.model = model
    result.test_predictions = torch.cat(predicted).to(torch.uint8).cpu().numpy()
    return result
