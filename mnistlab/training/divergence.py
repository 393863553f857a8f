"""A run's final loss and whether it diverged: numpy only, because every trained run is judged
with it as it finishes (train, study, workers) and those must not import the statistics stack."""

from __future__ import annotations

import math

import numpy as np

FINAL_FRACTION = 0.1  # final_train_loss: the mean over this last fraction of the steps


def final_loss(losses: np.ndarray) -> float:
    """Mean train loss over the last FINAL_FRACTION of the steps (at least one step)."""
    losses = np.asarray(losses, dtype=np.float64)
    return float(losses[-max(1, math.ceil(len(losses) * FINAL_FRACTION)) :].mean())


DIVERGENCE_RULE = "mean train loss over the last 10% of steps above the first step's loss"


def diverged(train_loss: np.ndarray) -> bool:
    """True when training made the loss worse, not better (DIVERGENCE_RULE).

    Such a run finished without a NaN but is not a sample of what the arm learns: it is
    flagged (tag, CLI, report) rather than averaged in silently.
    """
    losses = np.asarray(train_loss, dtype=np.float64)
    if len(losses) < 2:
        return False
    return bool(final_loss(losses) > losses[0])
