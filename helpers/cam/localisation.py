"""Do the maps point at the object? The pointing game and the energy inside the object's box.

``cams`` is (B, H, W) and ``boxes`` is (B, 4) ``(x_min, y_min, x_max, y_max)`` in inclusive
pixel indices (column x, row y), as ``helpers.data.make_shapes`` gives them; each may be a
numpy array, a tensor or a list. Both functions return a numpy array with one value per image.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from helpers.validate import check_int

__all__ = [
    "REFERENCE_TOLERANCE",
    "box_area_share",
    "energy_in_box",
    "pointing_game",
    "scaled_tolerance",
]

# TorchRay's pointing game (Zhang et al. 2018 protocol) accepts a point within 15 pixels of
# the object in images of about 224 x 224 pixels.
REFERENCE_TOLERANCE = (15, 224)


def _as_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numpy array, a tensor or a list of numbers") from err
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check(cams: Any, boxes: Any) -> tuple[np.ndarray, np.ndarray]:
    maps = _as_array(cams, "cams")
    if maps.ndim != 3:
        raise ValueError(f"cams must be (B, H, W), got shape {maps.shape}")
    if (maps < 0).any():
        raise ValueError("cams must be non-negative (Grad-CAM maps are, after their ReLU)")
    box = _as_array(boxes, "boxes")
    if box.ndim != 2 or box.shape[1] != 4 or box.shape[0] != maps.shape[0]:
        raise ValueError(
            f"boxes must be (B, 4) (x_min, y_min, x_max, y_max) with B = {maps.shape[0]} "
            f"maps, got shape {box.shape}"
        )
    if (box[:, 0] > box[:, 2]).any() or (box[:, 1] > box[:, 3]).any():
        raise ValueError("boxes need x_min <= x_max and y_min <= y_max (inclusive pixels)")
    return maps, box


def scaled_tolerance(image_size: int) -> int:
    """TorchRay's 15 pixels at 224 x 224, scaled to ``image_size`` (2 pixels at 32 x 32).

    The tolerance is meant as a fixed fraction of the image (15/224, about 7 %), so a small
    image gets a proportionally small one, rounded to whole pixels.
    """
    size = check_int("image_size", image_size, 1)
    pixels, reference = REFERENCE_TOLERANCE
    return round(pixels * size / reference)


def pointing_game(cams: Any, boxes: Any, tolerance: int = 15) -> np.ndarray:
    """A hit per image: is the map's maximum within ``tolerance`` pixels of the object's box?

    cams (B, H, W), boxes (B, 4) -> bool array (B,). As in TorchRay's ``PointingGame``, the
    point hits when some pixel of the box lies strictly closer than ``tolerance`` (Euclidean
    distance in pixels); ``tolerance=0`` means the point itself is inside the box. The default
    15 is TorchRay's for ~224 x 224 images: use :func:`scaled_tolerance` for small ones. The
    maximum is the first one in row-major order when it is tied; a map that is constant
    (e.g. all zero) points nowhere and counts as a miss.
    """
    maps, box = _check(cams, boxes)
    tolerance = check_int("tolerance", tolerance, 0)
    flat = maps.reshape(len(maps), -1)
    rows, cols = np.divmod(flat.argmax(axis=1), maps.shape[2])
    # Distance from the point to the nearest pixel of the box (0 inside it).
    dx = np.maximum.reduce([box[:, 0] - cols, np.zeros(len(box)), cols - box[:, 2]])
    dy = np.maximum.reduce([box[:, 1] - rows, np.zeros(len(box)), rows - box[:, 3]])
    distance = np.hypot(dx, dy)
    hit = (distance == 0) | (distance < tolerance)
    return hit & (flat.max(axis=1) > flat.min(axis=1))


def energy_in_box(cams: Any, boxes: Any) -> np.ndarray:
    """The share of each map's energy (sum of its values) inside the object's box.

    cams (B, H, W) non-negative, boxes (B, 4) -> float array (B,) in [0, 1]; NaN for a map
    that is zero everywhere (no energy to share). A map spread evenly over the image scores
    the box's share of the image's area, so compare with that baseline.
    """
    maps, box = _check(cams, boxes)
    _, height, width = maps.shape
    ys = np.arange(height)[None, :, None]
    xs = np.arange(width)[None, None, :]
    inside = (
        (xs >= box[:, 0, None, None])
        & (xs <= box[:, 2, None, None])
        & (ys >= box[:, 1, None, None])
        & (ys <= box[:, 3, None, None])
    )
    total = maps.sum(axis=(1, 2))
    in_box = (maps * inside).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, in_box / total, np.nan)


def box_area_share(boxes: Any, image_size: tuple[int, int]) -> np.ndarray:
    """The share of the image each (inclusive) box covers: the energy of a uniform map."""
    box = _as_array(boxes, "boxes")
    height, width = image_size
    x0, y0 = np.clip(box[:, 0], 0, width - 1), np.clip(box[:, 1], 0, height - 1)
    x1, y1 = np.clip(box[:, 2], 0, width - 1), np.clip(box[:, 3], 0, height - 1)
    return (x1 - x0 + 1) * (y1 - y0 + 1) / (height * width)
