"""Maps drawn over their images, through the package's ``show_cam_on_image``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pytorch_grad_cam.utils.image import show_cam_on_image

__all__ = ["overlay", "to_rgb"]


def to_rgb(
    images: torch.Tensor, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> np.ndarray:
    """Images (B, C, H, W) uint8, float in [0, 1], or normalised float with ``mean``/``std``
    -> float32 RGB (B, H, W, 3) in [0, 1], as ``show_cam_on_image`` expects them."""
    from helpers.plots import _to_display  # the course's one de-normalisation rule

    pixels = _to_display(images, mean, std).astype(np.float32)
    return np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels


def overlay(
    images: torch.Tensor,
    cams: Any,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    image_weight: float = 0.5,
) -> np.ndarray:
    """Heat maps over images: (B, C, H, W) and cams (B, H, W) in [0, 1] -> uint8 (B, H, W, 3).

    Normalised images need the ``mean`` and ``std`` used to normalise them. The jet colour
    map and the blend ``image_weight * image + (1 - image_weight) * heat map`` are the
    package's (``pytorch_grad_cam.utils.image.show_cam_on_image``).
    """
    rgb = to_rgb(images, mean, std)
    maps = cams.detach().cpu().numpy() if isinstance(cams, torch.Tensor) else np.asarray(cams)
    if maps.shape != rgb.shape[:3]:
        raise ValueError(f"cams must be (B, H, W) = {rgb.shape[:3]}, got shape {maps.shape}")
    if maps.min() < 0 or maps.max() > 1:
        raise ValueError(f"cams must lie in [0, 1], got [{maps.min():.3g}, {maps.max():.3g}]")
    if not 0 <= image_weight <= 1:
        raise ValueError(f"image_weight must be in [0, 1], got {image_weight!r}")
    return np.stack(
        [
            show_cam_on_image(img, cam.astype(np.float32), use_rgb=True, image_weight=image_weight)
            for img, cam in zip(rgb, maps, strict=True)
        ]
    )
