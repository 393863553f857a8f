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
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnistlab import names
from mnistlab.errors import NonFiniteLossError
from mnistlab.spec.run import ConfigError, RunConfig, check_recipe
from mnistlab.training.augment import build_augmenter
from mnistlab.training.datasets import ImageData, to_float_images
from mnistlab.training.evaluation import evaluate, predict  # noqa: F401 (predict: loop's API)
from mnistlab.training.models import build_model
from mnistlab.training.owndata import check_run_data
from mnistlab.training.recipe import build_optimizer, build_schedule
from mnistlab.training.registry import check_user_source

# Metrics go to the store at most this often (and at each epoch's end), so a run's curves
# show in the UI as it trains, at a few store calls per epoch (MNISTLAB_FLUSH_SECONDS).
FLUSH_SECONDS = float(os.environ.get("MNISTLAB_FLUSH_SECONDS", "10"))


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


def resolve_device(name: str, fix: str = "use --device cpu or auto") -> torch.device:
    """The torch device for "cpu", "cuda" or "auto"; ConfigError (ending with fix, which names
    where the user sets it: `train`'s option by default, a spec's [settings] for a study) when
    a GPU is asked for and none is visible."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device 'cuda' was asked for but no CUDA GPU is visible; {fix}.")
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


def _loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    if label_smoothing:
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    return F.cross_entropy(logits, labels)  # the paper's, unchanged


@dataclass
class _Run:
    """One run's state while it trains: tensors, model and recipe, per-step records, timing."""

    config: RunConfig
    device: torch.device
    sink: MetricSink
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any  # an lr_scheduler, or None: a constant lr
    order: torch.Generator
    augmenter: Callable[[torch.Tensor], torch.Tensor] | None
    steps_per_epoch: int
    total_steps: int
    # Losses stay on the device and are read in bulk at evaluations: no sync per step.
    losses: torch.Tensor
    step_wall_ms: np.ndarray
    step_lr: np.ndarray  # the lr each step's update used
    result: RunResult
    train_seconds_total: float = 0.0
    flushed_to: int = 0  # losses[:flushed_to] have been handed to the sink
    last_flush: float = field(default_factory=time.monotonic)

    def sync(self) -> None:
        """Wait for the GPU's queued work, so wall-clock segments measure it (no-op on CPU)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def hand_losses_to_sink(self, upto: int) -> np.ndarray:
        """Log the losses (and lrs) of steps flushed_to..upto-1; raise if any is not finite."""
        start = self.flushed_to
        chunk = self.losses[start:upto].cpu().numpy()
        if not np.isfinite(chunk).all():
            bad = start + int(np.argmin(np.isfinite(chunk)))
            raise NonFiniteLossError(f"train loss became {chunk[bad - start]} at step {bad}")
        steps = range(start, upto)
        self.sink.log(
            names.TRAIN_LOSS, chunk.tolist(), steps, self.step_wall_ms[start:upto].tolist()
        )
        if self.schedule is not None or start == 0:  # a constant lr: logged once, at step 0
            lr_steps = steps if self.schedule is not None else range(1)
            self.sink.log(
                names.LEARNING_RATE, self.step_lr[lr_steps.start : lr_steps.stop].tolist(), lr_steps
            )
        self.flushed_to = upto
        return chunk

    def train_step(self, step: int, batch: torch.Tensor) -> None:
        """One update on the images at indices `batch`: the paper's Adam step plus the recipe."""
        config = self.config
        images = self.train_x[batch]
        if self.augmenter is not None:
            images = self.augmenter(images)
        loss = _loss(self.model(images), self.train_y[batch], config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.step_lr[step] = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()
        self.losses[step] = loss.detach()
        self.step_wall_ms[step] = int(time.time() * 1000)

    def checkpoint(
        self, step: int, cumulative_seconds: float, on_eval: Callable[[EvalPoint], None] | None
    ) -> None:
        """Hand losses to the sink; on the paper's schedule evaluate the subset; flush now and then."""
        latest = self.hand_losses_to_sink(step + 1)[-1]
        if step % self.config.eval_every == 0:
            eval_x = self.test_x[: self.config.eval_subset]
            eval_y = self.test_y[: self.config.eval_subset]
            accuracy, eval_loss = evaluate(self.model, eval_x, eval_y)
            self.result.eval_steps.append(step)
            self.result.eval_accuracy.append(accuracy)
            self.sink.log(names.EVAL_ACCURACY, [accuracy], [step])
            self.sink.log(names.EVAL_LOSS, [eval_loss], [step])
            self.sink.log(names.TRAIN_SECONDS, [cumulative_seconds], [step])
            if on_eval:
                on_eval(EvalPoint(step, self.total_steps, float(latest), accuracy))
        if time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            self.sink.flush()  # hands over to the sink's writer thread: no waiting here
            self.last_flush = time.monotonic()

    def end_epoch(
        self, epoch: int, epoch_start: float, epoch_train_seconds: float
    ) -> list[torch.Tensor]:
        """Evaluate on the full test set, record the epoch's times; returns its predictions."""
        predicted: list[torch.Tensor] = []
        test_accuracy, test_loss = evaluate(self.model, self.test_x, self.test_y, predicted)
        self.sync()
        epoch_seconds = time.perf_counter() - epoch_start
        self.train_seconds_total += epoch_train_seconds
        last_step = (epoch + 1) * self.steps_per_epoch - 1
        result, sink = self.result, self.sink
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
        return predicted


def _check_run_inputs(config: RunConfig, data: ImageData) -> None:
    """Refuse data that is not the config's dataset, or a bad recipe, before any work."""
    check_run_data(config, data)  # an .npz dataset: its hash and sizes
    check_user_source(config.model_source, config.model_sha256)  # a user's net file: its hash
    if data.dataset != config.dataset and not data.sha256:
        raise ConfigError(
            f"The run is set up for dataset {config.dataset!r} but was given {data.dataset!r}."
        )
    check_recipe(config)  # an unknown optimizer or keyword: one paragraph, before any work


def _start_run(config: RunConfig, data: ImageData, sink: MetricSink, runtime: Runtime) -> _Run:
    """Tensors on the device, the seeded model, optimizer, schedule, batch order, augmenter."""
    device = runtime.device
    init_seed, order_seed = split_seed(config.seed)
    train_x = to_float_images(data.train_images[: config.train_size]).to(device)
    train_y = data.train_labels[: config.train_size].to(device)
    test_x = to_float_images(data.test_images).to(device)
    test_y = data.test_labels.to(device)

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
    return _Run(
        config=config,
        device=device,
        sink=sink,
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        model=model,
        optimizer=optimizer,
        schedule=schedule,
        order=order,
        augmenter=augmenter,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        losses=torch.empty(total_steps, dtype=torch.float32, device=device),
        step_wall_ms=np.empty(total_steps, dtype=np.int64),
        step_lr=np.empty(total_steps, dtype=np.float64),
        result=RunResult(config, str(device), runtime.threads, np.empty(0, dtype=np.float32)),
    )


def _train_epoch(
    run: _Run, epoch: int, on_eval: Callable[[EvalPoint], None] | None
) -> list[torch.Tensor]:
    """One pass over a fresh permutation, timing the training between evaluations."""
    config = run.config
    run.sync()
    epoch_start = segment_start = time.perf_counter()
    epoch_train_seconds = 0.0
    permutation = torch.randperm(config.train_size, generator=run.order).to(run.device)
    for index in range(run.steps_per_epoch):
        step = epoch * run.steps_per_epoch + index
        run.train_step(
            step, permutation[index * config.batch_size : (index + 1) * config.batch_size]
        )
        # The paper's schedule: evaluate after the update of every step with step % k == 0.
        if step % config.eval_every == 0 or index == run.steps_per_epoch - 1:
            run.sync()
            epoch_train_seconds += time.perf_counter() - segment_start
            run.checkpoint(step, run.train_seconds_total + epoch_train_seconds, on_eval)
            segment_start = time.perf_counter()
    return run.end_epoch(epoch, epoch_start, epoch_train_seconds)


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
    _check_run_inputs(config, data)
    run = _start_run(config, data, sink, runtime)
    for epoch in range(config.epochs):
        predicted = _train_epoch(run, epoch, on_eval)
    result = run.result
    result.train_loss = run.losses.cpu().numpy()
    result.model = run.model
    result.test_predictions = torch.cat(predicted).to(torch.uint8).cpu().numpy()
    return result
