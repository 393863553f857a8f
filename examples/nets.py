"""A user's own net, trained by experiments/own-net.toml: model = "../examples/nets.py:SmallMLP".

Any nn.Module whose forward takes images (N, 1, 28, 28) in [0, 1] and returns logits (N, 10)
will do; its keyword arguments come from the arm's model_args.
"""

from torch import Tensor, nn


class SmallMLP(nn.Module):
    """Flatten, one hidden ReLU layer (with dropout), then the 10 logits."""

    def __init__(self, hidden: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
