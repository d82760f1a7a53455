"""Are the maps faithful to the model? The package's perturbation metrics, per image.

ROAD (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for Attribution
Methods") replaces pixels by a noisy linear interpolation of their neighbours, so the
classifier is not fooled by the shape of a hole. Removing the *most* relevant pixels first
(MoRF) should make the class probability fall (more negative is better); removing the *least*
relevant first (LeRF) should barely change it (closer to 0 is better). Both are averaged over
several removal fractions. The confidence change multiplies the (normalised) image by the
map and measures the change in the class probability (less negative is better).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.metrics.road import (
    ROADLeastRelevantFirstAverage,
    ROADMostRelevantFirstAverage,
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from torch import nn

from helpers.cam.core import (
    _check_images,
    _check_model,
    _check_targets,
    model_state,
    predicted_targets,
)
from helpers.validate import check_int

__all__ = ["faithfulness"]


def faithfulness(
    model: nn.Module,
    images: torch.Tensor,
    cams: Any,
    targets: Sequence[int] | torch.Tensor | None = None,
    *,
    percentiles: Sequence[int] = (20, 40, 60, 80),
    seed: int = 0,
) -> pd.DataFrame:
    """ROAD and confidence change of each map, one row per image, in class probabilities.

    images (B, C, H, W) normalised as the model expects, cams (B, H, W) in [0, 1], targets
    the classes the maps explain (None: the predicted ones). Columns: ``road_morf`` and
    ``road_lerf`` (change in the class's softmax probability when pixels are removed most-
    or least-relevant first, averaged over ``percentiles``: each p removes (100 - p) % of
    the pixels, as in the package), ``road_combined`` = (lerf - morf) / 2 (higher is
    better) and ``confidence_change``. ROAD's imputation adds noise: ``seed`` fixes it
    without touching the global random state. The model is run in eval mode, left as found.
    """
    _check_model(model)
    images = _check_images(images)
    maps = cams.detach().cpu().numpy() if isinstance(cams, torch.Tensor) else np.asarray(cams)
    if maps.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"cams must be (B, H, W) matching images, got shape {maps.shape}")
    if not all(isinstance(p, int) and 0 < p < 100 for p in percentiles) or not percentiles:
        raise ValueError(f"percentiles must be ints in (0, 100), got {percentiles!r}")
    seed = check_int("seed", seed, 0)
    classes = _check_targets(targets, images.shape[0], getattr(model, "num_classes", None))
    if classes is None:
        classes = predicted_targets(model, images)
    wanted = [ClassifierOutputSoftmaxTarget(c) for c in classes]
    maps = maps.astype(np.float32)
    with model_state(model), torch.no_grad(), torch.random.fork_rng(devices=[]):
        model.eval()
        torch.manual_seed(seed)
        morf = ROADMostRelevantFirstAverage(list(percentiles))(images, maps, wanted, model)
        lerf = ROADLeastRelevantFirstAverage(list(percentiles))(images, maps, wanted, model)
        change = CamMultImageConfidenceChange()(images, maps, wanted, model)
    return pd.DataFrame(
        {
            "road_morf": morf,
            "road_lerf": lerf,
            "road_combined": (lerf - morf) / 2,
            "confidence_change": change,
        }
    )
