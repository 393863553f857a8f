"""The paper's nets, and build_model, which builds one by its name in registry.MODELS."""

from __future__ import annotations

from torch import Tensor, nn

from mnistlab.errors import MnistlabError
from mnistlab.training.registry import MODELS, model_factory


def conv_block(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    """Conv 5x5 (stride 1, padding 2, size-preserving), ReLU, optional 2x2 max-pool.

    With pooling, the pool runs before the ReLU: both are monotone, so max(relu(x)) equals
    relu(max(x)) value for value and gradient for gradient, and the ReLU touches 4x fewer
    elements. The parameters (and state_dict keys) are the paper's.
    """
    conv = nn.Conv2d(in_channels, out_channels, 5, 1, 2)
    return (
        nn.Sequential(conv, nn.MaxPool2d(2), nn.ReLU()) if pool else nn.Sequential(conv, nn.ReLU())
    )


class CNN2(nn.Module):
    """The paper's net: two conv blocks with pooling, then one linear layer (28,938 params)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = conv_block(1, 16, pool=True)
        self.conv2 = conv_block(16, 32, pool=True)
        self.out = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, 1, 28, 28) in [0, 1] -> logits (N, 10)."""
        return self.out(self.conv2(self.conv1(x)).flatten(1))


class CNN3(nn.Module):
    """The paper's variant: a third conv block (no pool, 7x7 is odd) before the linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = conv_block(1, 16, pool=True)
        self.conv2 = conv_block(16, 32, pool=True)
        self.conv3 = conv_block(32, 64, pool=False)
        self.out = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.conv3(self.conv2(self.conv1(x))).flatten(1))


class UnknownModelError(MnistlabError, ValueError):
    """A model name that is not in the registry."""


def build_model(name: str) -> nn.Module:
    """Instantiate a registered net; the caller seeds the RNG first."""
    try:
        factory = model_factory(name)
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise UnknownModelError(
            f"Unknown model {name!r}. Known models: {known}. "
            "Pick one of those, or register a new class in mnistlab/training/registry.py."
        ) from None
    return factory()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
