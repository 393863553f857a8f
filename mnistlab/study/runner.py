"""One tracked run: an arm's config trained on its dataset, every number written to the store."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mnistlab.errors import NonFiniteLossError
from mnistlab.names import (
    ARM_TAG,
    ATTEMPTS_TAG,
    CLAIM_TAG,
    CONFIG_HASH_TAG,
    CUDNN_DETERMINISTIC_TAG,
    DATASET_FILE_TAG,
    DATASET_SHA256_TAG,
    DATASET_TAG,
    DIVERGED_TAG,
    MODEL_ARTIFACTS,
    MODEL_FILE_TAG,
    MODEL_SHA256_TAG,
    MODEL_TAG,
    N_PARAMETERS_TAG,
    NOTE_TAG,
    PREDICTIONS_FILE,
    PROTOCOL_TAG,
    SEED_TAG,
    STUDY_TAG,
    TF32_TAG,
)
from mnistlab.spec.run import PROTOCOL_VERSION, PlannedRun
from mnistlab.store.liveness import claim_holder, death, process_alive
from mnistlab.store.provenance import environment_tags
from mnistlab.store.store import Store
from mnistlab.store.tracked_run import TrackedRun, Withdrawn
from mnistlab.training.datasets import ImageData
from mnistlab.training.divergence import diverged
from mnistlab.training.loop import EvalPoint, RunResult, prepare_runtime, train
from mnistlab.training.models import count_parameters


def run_tags(planned: PlannedRun, study: str, device: str, threads: int) -> dict[str, str]:
    config = planned.config
    return (
        {
            STUDY_TAG: study,
            ARM_TAG: planned.arm,
            MODEL_TAG: config.model,
            SEED_TAG: str(config.seed),
            DATASET_TAG: config.dataset,
            CONFIG_HASH_TAG: config.config_hash(),
            PROTOCOL_TAG: str(PROTOCOL_VERSION),
            # Pinned by train.configure_torch; recorded so a reader need not trust the code.
            TF32_TAG: str(torch.backends.cuda.matmul.allow_tf32).lower(),
            CUDNN_DETERMINISTIC_TAG: str(torch.backends.cudnn.deterministic).lower(),
            **environment_tags(device, threads),
        }
        | (
            {MODEL_FILE_TAG: config.model_source, MODEL_SHA256_TAG: config.model_sha256}
            if config.model_sha256
            else {}
        )
        | (
            {DATASET_FILE_TAG: config.dataset_source, DATASET_SHA256_TAG: config.dataset_sha256}
            if config.dataset_sha256
            else {}
        )
    )


def describe_run(planned: PlannedRun, result: RunResult) -> str:
    """The run's description in the MLflow UI (Markdown)."""
    config = planned.config
    return (
        f"Arm **{planned.arm}** (model {config.model}, lr {config.lr:g}, batch "
        f"{config.batch_size}, {config.epochs} epoch(s), {config.dataset}), seed {config.seed}: "
        f"test accuracy {result.test_accuracy[-1]:.4f} after "
        f"{sum(result.epoch_train_seconds):.1f} s of training on {result.device} "
        f"({result.threads} threads)."
    )


class ClaimedElsewhere(Withdrawn):
    """Another run owns this config (training it, or trained it since the study planned)."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def tracked_train(
    planned: PlannedRun,
    data: ImageData,
    store: Store,
    experiment_id: str,
    study: str,
    extra_tags: dict[str, str] | None = None,
    on_eval: Callable[[EvalPoint], None] | None = None,
    claim_since: int | None = None,
) -> tuple[str, RunResult]:
    """Train and track; the run ends FINISHED, FAILED (with failure_reason) or KILLED.

    claim_since (a study's runs: when it planned, ms): the run claims its config before it
    trains; if another run holds it, this one is withdrawn (deleted) and ClaimedElsewhere
    raised. Earlier attempts of the same task (the claim tag: a Ray retry) are cleaned up
    and counted in the attempts tag.
    """
    config = planned.config
    runtime = prepare_runtime(config)
    tags = {
        **run_tags(planned, study, str(runtime.device), runtime.threads),
        **(extra_tags or {}),
    }
    params = {**dataclasses.asdict(config), "data_dir": str(data.root)}
    run = TrackedRun(store, experiment_id, planned.name, params, tags)
    try:
        with run:
            if claim_since is not None:
                claim(store, run, experiment_id, claim_since)
            if data.sha256:  # an .npz dataset: its file and hash
                digest, source = data.sha256, data.dataset
            else:
                digest = data.info.checksums[next(iter(data.info.checksums))][1]
                source = str(data.info.raw_dir(data.root))
            run.log_dataset(
                name=f"{Path(config.dataset).name}-train",
                digest=f"{digest[:8]}-{config.train_size}",
                source=source,
                context="training",
                features=data.train_images[: config.train_size].numpy(),
                targets=data.train_labels[: config.train_size].numpy(),
            )
            if config.model_source:  # a user's net: the exact file it was trained from
                run.log_file(Path(config.model_source), MODEL_ARTIFACTS)
            result = train(config, data, sink=run, on_eval=on_eval, runtime=runtime)
            run.set_tags(
                {
                    N_PARAMETERS_TAG: str(count_parameters(result.model)),
                    DIVERGED_TAG: str(diverged(result.train_loss)).lower(),
                    NOTE_TAG: describe_run(planned, result),
                }
            )
            run.log_state_dict(result.model.state_dict())
            # The report's demo reads these instead of loading torch to predict again.
            run.log_array(result.test_predictions, PREDICTIONS_FILE)
    except NonFiniteLossError as error:
        error.run_id = run.run_id  # a study names the failed run in its summary
        raise
    return run.run_id, result


def claim(store: Store, run: TrackedRun, experiment_id: str, since_ms: int) -> None:
    """Keep the run only if it is the config's one live claim (liveness.claim_holder)."""
    ours = run.stored
    runs = store.runs_of_config(experiment_id, ours.tags[CONFIG_HASH_TAG])
    token = ours.tags.get(CLAIM_TAG)
    earlier = [
        r for r in runs if token and r.tags.get(CLAIM_TAG) == token and r.run_id != ours.run_id
    ]
    if earlier:  # this task ran before and its worker died: clean its runs, count it
        attempts = 1 + max(int(r.tags.get(ATTEMPTS_TAG, "1")) for r in earlier)
        for previous in earlier:
            store.delete_run(previous.run_id)
        run.set_tags({ATTEMPTS_TAG: str(attempts)})
    now = int(time.time() * 1000)
    live = [r for r in runs if r.status != "RUNNING" or death(r, now, process_alive) is None]
    holder = claim_holder(live, ours, since_ms)
    if holder is not None:
        raise ClaimedElsewhere(  # the run's own name goes beside it where it is shown
            f"run {holder.run_id}, {holder.status.lower()} on host {holder.tags.get('host', '?')}"
        )
