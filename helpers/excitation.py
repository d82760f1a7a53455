"""How class-specific are attention weights? Per-class means and a between-class variance share.

Hu et al. ("Squeeze-and-Excitation Networks", section 7.2, Fig. 6) plot the mean excitation of
an SE block per class and observe that early blocks weigh channels alike for every class, and
later blocks differently per class. This module turns that picture into numbers::

    maps = helpers.analysis.attention_maps(model, images)       # {name: AttentionMap}
    per_class = class_means(maps["layer3.0.se"].channel, labels)    # (K, C)
    class_specificity(maps["layer3.0.se"].channel, labels)         # 0: class-agnostic .. 1

``class_specificity`` is the share of the excitations' variance explained by the class (the
between-class sum of squares over the total, summed over channels: eta squared of a one-way
ANOVA). With few images per class it is biased upwards even for unrelated labels, by about
(K - 1) / (N - 1) for K classes and N images, so compare it with the same number for shuffled
labels (``shuffled_specificity``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from helpers.validate import check_int

__all__ = ["class_means", "class_specificity", "shuffled_specificity"]


def _check(weights: object, labels: object) -> tuple[Tensor, Tensor]:
    if not isinstance(weights, Tensor) or weights.dim() != 2:
        got = tuple(weights.shape) if isinstance(weights, Tensor) else type(weights).__name__
        raise ValueError(f"weights must be a tensor (N, C) of channel weights, got {got}")
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.dtype != torch.int64:
        raise ValueError("labels must be an int64 tensor (N,) of class indices")
    if len(labels) != len(weights):
        raise ValueError(f"{len(weights)} rows of weights but {len(labels)} labels")
    if len(labels) < 2:
        raise ValueError("need at least 2 images")
    if labels.min() < 0:
        raise ValueError("labels must be >= 0")
    return weights.detach().double().cpu(), labels.cpu()


def class_means(weights: Tensor, labels: Tensor, num_classes: int | None = None) -> Tensor:
    """Mean channel weight per class. weights: (N, C), labels: (N,) -> (K, C).

    K is ``num_classes`` (default: ``labels.max() + 1``); a class without images gets NaN.
    """
    w, y = _check(weights, labels)
    k = int(y.max()) + 1 if num_classes is None else check_int("num_classes", num_classes, 1)
    if int(y.max()) >= k:
        raise ValueError(f"labels go up to {int(y.max())}, beyond num_classes={k}")
    sums = torch.zeros(k, w.shape[1], dtype=w.dtype).index_add_(0, y, w)
    counts = torch.bincount(y, minlength=k).to(w.dtype).unsqueeze(1)
    return (sums / counts).to(weights.dtype)  # 0 / 0 = NaN for an empty class


def class_specificity(weights: Tensor, labels: Tensor) -> float:
    """Share of the weights' variance that the class explains, in [0, 1].

    weights: (N, C), labels: (N,). Sum over channels of sum_k n_k (mean_k - mean)^2, divided
    by the sum over channels of sum_i (w_i - mean)^2. 0 when every class has the same mean
    weights (class-agnostic), 1 when each image's weights equal its class's mean. Weights that
    never vary (all gates equal) give 0.
    """
    w, y = _check(weights, labels)
    centred = w - w.mean(0)
    total = centred.pow(2).sum().item()
    if total == 0.0:
        return 0.0
    k = int(y.max()) + 1
    counts = torch.bincount(y, minlength=k).to(w.dtype)
    sums = torch.zeros(k, w.shape[1], dtype=w.dtype).index_add_(0, y, centred)
    present = counts > 0
    between = (sums[present].pow(2).sum(1) / counts[present]).sum().item()
    return between / total


def shuffled_specificity(
    weights: Tensor, labels: Tensor, *, repeats: int = 20, seed: int = 0
) -> float:
    """Mean :func:`class_specificity` over ``repeats`` random shuffles of the labels.

    The level that class-agnostic weights reach by chance with this many images and classes.
    """
    check_int("repeats", repeats, 1)
    _check(weights, labels)
    g = torch.Generator().manual_seed(seed)
    values = [
        class_specificity(weights, labels[torch.randperm(len(labels), generator=g)])
        for _ in range(repeats)
    ]
    return sum(values) / len(values)
