"""Per-sample random augmentation of training batches, drawn from the run's own generator.

`augment = { translate = 2, rotate = 10, scale = 0.1, erase = 0.25 }`: up to 2 pixels of shift
in x and y (whole pixels, as torchvision's RandomAffine), up to 10 degrees of rotation, a zoom
of 1 ± 0.1, and a probability of 0.25 of erasing one rectangle (RandomErasing's defaults: 2-33%
of the image, aspect 0.3-3.3, filled with 0).

The warp is torchvision.transforms.v2.functional.affine's (same inverse matrix, same sampling
grid, nearest pixels, zero fill; tests/training/test_augment.py checks every sample against
it), computed for the whole batch at once: torchvision's transforms draw one set of parameters
per call, so per-sample randomness means one call per image, measured at about 1 ms each on
this CPU, several times a cnn2 step. Every parameter is drawn from a torch.Generator seeded
from the run's seed alone (split_seed's third seed), never the global RNG: two arms with the
same augmentation and seed see identical batches, and a rerun is bit-identical.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

ERASE_AREA = (0.02, 0.33)  # RandomErasing's defaults
ERASE_RATIO = (0.3, 3.3)


class Augmenter:
    """Draws and applies one batch's random transforms; each call advances its generator."""

    def __init__(self, augment: dict[str, Any], seed: int) -> None:
        self.translate = float(augment.get("translate", 0))
        self.rotate = float(augment.get("rotate", 0))
        self.scale = float(augment.get("scale", 0))
        self.erase = float(augment.get("erase", 0))
        self.generator = torch.Generator().manual_seed(seed)

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=self.generator, dtype=torch.float64) * (high - low) + low

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """images: float (N, C, H, W). Returns new, augmented images; the input is not changed."""
        n = len(images)
        out = images
        if self.translate or self.rotate or self.scale:
            angle = self._uniform(n, -self.rotate, self.rotate)
            tx = torch.round(self._uniform(n, -self.translate, self.translate))
            ty = torch.round(self._uniform(n, -self.translate, self.translate))
            scale = self._uniform(n, 1 - self.scale, 1 + self.scale)
            out = self._affine(images, angle, tx, ty, scale)
        if self.erase:
            out = self._erase(out)
        return out

    @staticmethod
    def _affine(
        images: torch.Tensor,
        angle: torch.Tensor,
        tx: torch.Tensor,
        ty: torch.Tensor,
        scale: torch.Tensor,
    ) -> torch.Tensor:
        # torchvision's _get_inverse_affine_matrix with no shear, centre at the image centre.
        rad = torch.deg2rad(angle)
        cos, sin = torch.cos(rad) / scale, torch.sin(rad) / scale
        theta = torch.stack(
            [
                torch.stack([cos, sin, cos * -tx + sin * -ty], 1),
                torch.stack([-sin, cos, -sin * -tx + cos * -ty], 1),
            ],
            1,
        )  # (N, 2, 3): output pixel -> input pixel, in pixels from the centre
        n, channels, h, w = images.shape
        dtype = images.dtype
        theta = theta.to(dtype=dtype, device=images.device)
        # torchvision's _affine_grid: pixel-centre coordinates, normalised after theta.
        base = torch.empty(1, h, w, 3, dtype=dtype, device=images.device)
        base[..., 0].copy_(torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w))
        base[..., 1].copy_(torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h).unsqueeze(-1))
        base[..., 2].fill_(1)
        norm = torch.tensor([0.5 * w, 0.5 * h], dtype=dtype, device=images.device)
        grid = base.view(1, h * w, 3).expand(n, -1, -1).bmm(theta.transpose(1, 2) / norm)
        return F.grid_sample(
            images,
            grid.view(n, h, w, 2),
            mode="nearest",
            padding_mode="zeros",
            align_corners=False,
        )

    def _erase(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        chosen = torch.rand(n, generator=self.generator, dtype=torch.float64) < self.erase
        area = self._uniform(n, *ERASE_AREA) * h * w
        ratio = torch.exp(self._uniform(n, math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1])))
        # RandomErasing retries up to 10 times for a box that fits; here it is clipped to fit.
        eh = torch.round(torch.sqrt(area * ratio)).clamp(1, h - 1).to(torch.int64)
        ew = torch.round(torch.sqrt(area / ratio)).clamp(1, w - 1).to(torch.int64)
        top = (torch.rand(n, generator=self.generator, dtype=torch.float64) * (h - eh + 1)).long()
        left = (torch.rand(n, generator=self.generator, dtype=torch.float64) * (w - ew + 1)).long()
        rows = torch.arange(h).view(1, h, 1)
        cols = torch.arange(w).view(1, 1, w)
        box = (
            (rows >= top.view(n, 1, 1))
            & (rows < (top + eh).view(n, 1, 1))
            & (cols >= left.view(n, 1, 1))
            & (cols < (left + ew).view(n, 1, 1))
            & chosen.view(n, 1, 1)
        )
        self.last_boxes = (chosen, top, left, eh, ew)  # for tests
        return images.masked_fill(box.unsqueeze(1).to(images.device), 0.0)


def build_augmenter(augment: dict[str, Any], seed: int) -> Augmenter | None:
    """None for an empty table (or all zeros): the paper's loop, untouched."""
    if not any(augment.values()):
        return None
    return Augmenter(augment, seed)
