"""The paper's demo, computed: each arm's first-seed run predicts the test set from its stored
weights. The report only draws what this returns."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistlab.results.evidence import StudyResults
from mnistlab.store.store import Store
from mnistlab.training.dataset_registry import DataError
from mnistlab.training.datasets import load_test_set
from mnistlab.training.owndata import own_test_set

DEMO_IMAGES = 10


@dataclass
class Demo:
    images: np.ndarray  # (N, 28, 28) uint8: the whole test set; an .npz's float (N, C, H, W)
    labels: np.ndarray  # (N,)
    predictions: dict[str, np.ndarray]  # arm -> (N,) predicted labels, in the spec's arm order
    chosen: np.ndarray  # (DEMO_IMAGES,) indices drawn at random, seeded with `seed`
    seed: int  # the seed whose runs predicted


def predict_test_set(
    results: StudyResults, store: Store, data_dir: Path | str | None
) -> tuple[Demo | None, str]:
    """(the demo, "") or (None, why it is missing): no data here, or nothing readable stored.

    A run stores its test-set predictions as it finishes; only runs older than that are
    predicted again from their weights, which needs torch.
    """
    try:
        spec = results.spec
        if spec.dataset_sha256:  # an .npz file: the one the runs used, or the reason it is not
            images, labels = own_test_set(spec.dataset, spec.dataset_source, spec.dataset_sha256)
        else:
            images, labels = load_test_set(data_dir, spec.dataset)
    except DataError as error:
        return None, f"The demo is missing: {error}"
    first_seed = int(results.runs["seed"].min())
    predictions = {}
    with tempfile.TemporaryDirectory() as folder:
        for arm in results.arms:
            row = results.runs[(results.runs["arm"] == arm) & (results.runs["seed"] == first_seed)]
            if row.empty:
                continue
            run_id, model = row["run_id"].iloc[0], row["model"].iloc[0]
            try:
                stored = store.download_predictions(run_id, Path(folder) / arm)
                labels_of_run = (
                    np.load(stored, allow_pickle=False).astype(np.int64) if stored else None
                )
                if labels_of_run is None or len(labels_of_run) != len(labels):
                    # An older run, or one trained on other test files than these: predict
                    # these images from its weights.
                    labels_of_run = _predict_from_weights(
                        store, run_id, model, images, Path(folder) / arm
                    )
                predictions[arm] = labels_of_run
            except Exception as error:  # noqa: BLE001 - artifacts may live on another machine
                return None, f"The demo is missing: predictions could not be read ({error})."
    chosen = np.random.default_rng(first_seed).choice(len(labels), DEMO_IMAGES, replace=False)
    return Demo(images, labels, predictions, chosen, first_seed), ""


def _predict_from_weights(
    store: Store, run_id: str, model_name: str, images: np.ndarray, folder: Path
) -> np.ndarray:
    import torch

    from mnistlab.training.datasets import to_float_images
    from mnistlab.training.loop import predict
    from mnistlab.training.models import build_model

    path = store.download_weights(run_id, folder)
    model = build_model(model_name)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return predict(model, to_float_images(torch.from_numpy(images.copy()))).numpy()
