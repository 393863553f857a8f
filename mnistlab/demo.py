"""The paper's demo, computed: each arm's first-seed run predicts the test set from its stored
weights. The report only draws what this returns."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistlab.data import DataError, load_dataset
from mnistlab.results import StudyResults
from mnistlab.tracking import Store

DEMO_IMAGES = 10


@dataclass
class Demo:
    images: np.ndarray  # (N, 28, 28) uint8: the whole test set
    labels: np.ndarray  # (N,)
    predictions: dict[str, np.ndarray]  # arm -> (N,) predicted labels, in the spec's arm order
    chosen: np.ndarray  # (DEMO_IMAGES,) indices drawn at random, seeded with `seed`
    seed: int  # the seed whose runs predicted


def predict_test_set(
    results: StudyResults, store: Store, data_dir: Path | str | None
) -> tuple[Demo | None, str]:
    """(the demo, "") or (None, why it is missing): no data here, or weights not readable."""
    import torch

    from mnistlab.models import build_model
    from mnistlab.train import predict

    try:
        data = load_dataset(data_dir, results.spec.dataset, download=False)
    except DataError as error:
        return None, f"The demo is missing: {error}"
    from mnistlab.data import to_float_images

    images = to_float_images(data.test_images)
    first_seed = int(results.runs["seed"].min())
    predictions = {}
    with tempfile.TemporaryDirectory() as folder:
        for arm in results.arms:
            row = results.runs[(results.runs["arm"] == arm) & (results.runs["seed"] == first_seed)]
            if row.empty:
                continue
            try:
                path = store.download_weights(row["run_id"].iloc[0], Path(folder) / arm)
            except Exception as error:  # noqa: BLE001 - artifacts may live on another machine
                return None, f"The demo is missing: weights could not be read ({error})."
            model = build_model(row["model"].iloc[0])
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            predictions[arm] = predict(model, images).numpy()
    labels = data.test_labels.numpy()
    chosen = np.random.default_rng(first_seed).choice(len(labels), DEMO_IMAGES, replace=False)
    return Demo(data.test_images.numpy(), labels, predictions, chosen, first_seed), ""
