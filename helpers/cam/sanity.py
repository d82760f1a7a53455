"""The model-randomisation sanity check of Adebayo et al. (2018), "Sanity Checks for Saliency
Maps": re-initialise the weights from the top layer down (cascading) and see whether the maps
change. A map that still looks the same once the weights it explains are random shows the
image's edges, not what the model learned. Similarity is the Spearman rank correlation of each
map with the trained model's map (1: same ranking of pixels, about 0: unrelated).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from torch import nn

from helpers.cam.core import (
    _check_images,
    _check_model,
    _is_stage,
    default_target_layer,
    grad_cam,
    predicted_targets,
)
from helpers.validate import check_int

__all__ = ["cascade_units", "cascading_randomization", "spearman_per_image"]


def cascade_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The units randomised one after another, from the output down: the head, then every
    block of every stage (last first), then the stem's layers. (name, module) pairs."""
    _check_model(model)
    units: list[tuple[str, nn.Module]] = []
    for name, child in reversed(list(model.named_children())):
        if _is_stage(child):
            units += [(f"{name}.{i}", child[i]) for i in reversed(range(len(child)))]
        elif any(True for _ in child.parameters()):
            units.append((name, child))
    return units


def _reinitialise(module: nn.Module) -> None:
    """Draw fresh weights as at construction (PyTorch's default initialisation)."""
    for m in module.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()


def spearman_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of map a[i] with b[i]: (B, H, W) x2 -> (B,) (NaN if constant)."""
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"need two (B, H, W) arrays of one shape, got {a.shape} and {b.shape}")
    out = np.full(len(a), np.nan)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            out[i] = spearmanr(x.ravel(), y.ravel()).statistic
    return out


def cascading_randomization(
    model: nn.Module,
    images: torch.Tensor,
    targets: Sequence[int] | torch.Tensor | None = None,
    *,
    method: str = "gradcam",
    target_layer: nn.Module | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Maps of a copy of ``model`` whose weights are re-initialised unit by unit from the top.

    images (B, C, H, W); targets: the classes to explain (None: the trained model's
    predictions, kept fixed at every step). Returns a table with one row per step
    (``randomised_down_to``: the lowest unit randomised so far, ``spearman`` and
    ``spearman_std`` over the images) and the maps: {"trained": (B, H, W), unit: (B, H, W)}.
    The model itself is not changed. ``seed`` draws the random weights.
    """
    _check_model(model)
    images = _check_images(images)
    seed = check_int("seed", seed, 0)
    layer = default_target_layer(model) if target_layer is None else target_layer
    layer_name = next((n for n, m in model.named_modules() if m is layer), None)
    if layer_name is None:
        raise ValueError("target_layer is not a module of this model")
    classes = predicted_targets(model, images) if targets is None else targets

    maps = {"trained": grad_cam(model, images, classes, layer, method)}
    rows = []
    randomised = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, unit in cascade_units(randomised):
            _reinitialise(unit)
            cams = grad_cam(
                randomised, images, classes, randomised.get_submodule(layer_name), method
            )
            rho = spearman_per_image(maps["trained"], cams)
            maps[name] = cams
            rows.append(
                {
                    "randomised_down_to": name,
                    "spearman": float(np.nanmean(rho)) if np.isfinite(rho).any() else np.nan,
                    "spearman_std": float(np.nanstd(rho)) if np.isfinite(rho).any() else np.nan,
                }
            )
    return pd.DataFrame(rows), maps
