"""A trained net on float images: accuracy, mean loss and predicted labels, in large chunks.

Used at the paper's evaluation steps and at each epoch's end (loop.py), and on a run's saved
model (reports, store checks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Images per no-grad forward pass. On CPU mid-sized chunks keep activations in cache (measured
# fastest around 200-500 on 2 cores); on a GPU one big chunk is best.
EVAL_CHUNK = {"cpu": 250, "cuda": 10000}

# Model classes with an op that has no oneDNN kernel; they are evaluated on dense tensors.
_DENSE_ONLY: set[type[nn.Module]] = set()


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
