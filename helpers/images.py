"""Images as a person sees them: the course's one rule for turning tensors into pixels.

Plots (``helpers.plots``) and Grad-CAM overlays (``helpers.cam``) both show images, some raw
(uint8), some normalised for a network; both go through :func:`to_display`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["to_display", "to_rgb"]


def to_display(
    images: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None
) -> np.ndarray:
    """Images (N, C, H, W) uint8 or float -> (N, H, W, C) float in [0, 1], ready for imshow.

    uint8 images are scaled by 1/255; float images in [0, 1] pass as they are; normalised
    float images need the ``mean`` and ``std`` used to normalise them, and are de-normalised.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(
            f"images must be a (N, C, H, W) tensor, got "
            f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}"
        )
    if images.shape[1] not in (1, 3):
        raise ValueError(
            f"images need 1 or 3 channels (N, C, H, W), got shape {tuple(images.shape)}"
        )
    x = images.detach().cpu()
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif x.is_floating_point():
        x = x.float()
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std to de-normalise, or neither")
        if mean is not None:
            c = x.shape[1]
            if len(mean) != c or len(std) != c:
                raise ValueError(f"mean/std need {c} values, got {tuple(mean)} and {tuple(std)}")
            x = x * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
        elif x.min() < -0.01 or x.max() > 1.01:
            raise ValueError(
                f"float images range over [{x.min():.2f}, {x.max():.2f}], not [0, 1]: they look "
                "normalised; pass the mean= and std= used to normalise them"
            )
    else:
        raise TypeError(f"images must be uint8 or float, got {x.dtype}")
    return x.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def to_rgb(
    images: torch.Tensor, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> np.ndarray:
    """Images (B, C, H, W) uint8, float in [0, 1], or normalised float with ``mean``/``std``
    -> float32 RGB (B, H, W, 3) in [0, 1], as ``show_cam_on_image`` expects them."""
    pixels = to_display(images, mean, std).astype(np.float32)
    return np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels
