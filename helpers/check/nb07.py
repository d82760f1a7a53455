"""Self-checks for notebook 07 (Grad-CAM)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from helpers.cam import energy_in_box as reference
from helpers.check.core import exercise, expect, expect_close, expect_shape
from helpers.models import resnet50


@exercise("Grad-CAM channel weights")
def cam_weights(fn: Callable[[torch.Tensor], torch.Tensor]) -> str:
    """The learner's ``fn(grads) -> weights``: grads (B, K, h, w) -> alpha (B, K).

    Grad-CAM (Selvaraju et al. 2017, eq. 1) weights channel k by the global average of the
    gradient of the class score over the positions of the feature map.
    """
    grads = torch.randn(2, 5, 3, 4, generator=torch.Generator().manual_seed(0))
    got = fn(grads.clone())
    expect_shape(got, (2, 5), "weights")
    expect_close(got, grads.mean(dim=(2, 3)), "weights", rtol=1e-5, atol=1e-6)
    return "alpha_k is the gradient averaged over the h x w positions"


@exercise("Energy inside a box")
def energy_in_box(fn: Callable[[np.ndarray, tuple[int, int, int, int]], float]) -> str:
    """The learner's ``fn(cam, box) -> float`` for one map (H, W) and one inclusive box.

    Checked against ``helpers.cam.energy_in_box`` on random maps and boxes, edges included.
    """
    rng = np.random.default_rng(0)
    cases = [(0, 0, 7, 5), (3, 2, 3, 2), (10, 4, 15, 11), (0, 0, 15, 11)]
    for box in cases:
        cam = rng.random((12, 16))
        want = float(reference(cam[None], [box])[0])
        got = fn(cam.copy(), box)
        expect(
            isinstance(got, (float, np.floating)) and abs(float(got) - want) < 1e-9,
            f"box {box} (x_min, y_min, x_max, y_max) on a 12x16 map: you returned {got!r}, "
            f"expected {want:.6f} (are x_max and y_max inside the box? is x the column?)",
        )
    return "share of the map's sum inside the inclusive box, x as column"


@exercise("ScoreCAM's forward passes")
def scorecam_passes(answer: int) -> str:
    """Masked forward passes ScoreCAM makes per image at ResNet50's default target layer."""
    with torch.device("meta"):
        channels = resnet50().num_features
    expect_close(answer, channels, "your count", rtol=0.0, atol=0.0)
    return f"one masked copy of the image per channel of layer4: {channels:,}"
