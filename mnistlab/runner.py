"""One tracked run: a config trained on MNIST with every number written to MLflow."""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable

import torch
from mlflow import MlflowClient

from mnistlab.config import PROTOCOL_VERSION, RunConfig
from mnistlab.data import MNIST_FILES, Mnist
from mnistlab.models import count_parameters
from mnistlab.provenance import environment_tags
from mnistlab.tracking import TrackedRun
from mnistlab.train import EvalPoint, RunResult, configure_torch, resolve_device, train


def _raise_interrupt(signum, frame) -> None:  # noqa: ANN001
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C: the current run ends KILLED and finished runs stay."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def run_name(config: RunConfig) -> str:
    return f"{config.model}-s{config.seed}"


def run_tags(config: RunConfig, study: str, device: str, threads: int) -> dict[str, str]:
    return {
        "study": study,
        "model": config.model,
        "seed": str(config.seed),
        "config_hash": config.config_hash(),
        "protocol_version": str(PROTOCOL_VERSION),
        # Pinned by train.configure_torch; recorded so a reader need not trust the code.
        "tf32": str(torch.backends.cuda.matmul.allow_tf32).lower(),
        "cudnn_deterministic": str(torch.backends.cudnn.deterministic).lower(),
        **environment_tags(device, threads),
    }


def tracked_train(
    config: RunConfig,
    data: Mnist,
    client: MlflowClient,
    experiment_id: str,
    study: str,
    extra_tags: dict[str, str] | None = None,
    on_eval: Callable[[EvalPoint], None] | None = None,
) -> tuple[str, RunResult]:
    """Train and track; the run ends FINISHED, FAILED (with failure_reason) or KILLED."""
    device = resolve_device(config.device)
    threads = configure_torch(config, device)
    tags = {**run_tags(config, study, str(device), threads), **(extra_tags or {})}
    params = {**dataclasses.asdict(config), "data_dir": str(data.root)}
    with TrackedRun(client, experiment_id, run_name(config), params, tags) as run:
        train_md5 = MNIST_FILES["train-images-idx3-ubyte"][1]
        run.log_dataset(
            name="mnist-train",
            digest=f"{train_md5[:8]}-{config.train_size}",
            source=str(data.root),
            context="training",
            features=data.train_images[: config.train_size].numpy(),
            targets=data.train_labels[: config.train_size].numpy(),
        )
        result = train(config, data, sink=run, on_eval=on_eval)
        run.set_tags({"n_parameters": str(count_parameters(result.model))})
        run.log_state_dict(result.model.state_dict())
    return run.run_id, result
