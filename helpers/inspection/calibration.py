"""Calibration: does a model's confidence match its accuracy?

A classifier is *calibrated* when, among the images it labels with confidence p (its top
softmax probability), a fraction p is right. Guo et al. 2017 ("On Calibration of Modern
Neural Networks") measure it by sorting the test images into equal-width confidence bins:

    table = reliability_table(logits, labels, bins=10)   # one row per bin
    expected_calibration_error(logits, labels)          # ECE, in [0, 1]
    helpers.plots.reliability_diagram(table)             # accuracy against confidence

ECE = sum over bins of (bin size / N) * |accuracy(bin) - mean confidence(bin)|. It is 0 for a
perfectly calibrated model; it depends on the number of bins, and on a small test set each bin
holds few images, so compare ECEs measured with the same bins on the same images.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from helpers.eval_mode import eval_mode
from helpers.validate import check_int

__all__ = [
    "collect_logits",
    "confidence_summary",
    "expected_calibration_error",
    "reliability_table",
    "smoothed_optimum_gap",
]


@torch.no_grad()
def collect_logits(model: nn.Module, loader: Iterable) -> tuple[Tensor, Tensor]:
    """The model's logits and the true labels over a whole loader, in eval mode, on the CPU.

    loader yields (x, y): x (B, C, H, W), y (B,). Returns logits (N, K) float32 and labels
    (N,) int64.
    """
    device = next(model.parameters()).device
    logits, labels = [], []
    with eval_mode(model):
        for x, y in loader:
            logits.append(model(x.to(device)).float().cpu())
            labels.append(y.cpu())
    if not logits:
        raise ValueError("the loader yielded no batches: no logits to collect")
    return torch.cat(logits), torch.cat(labels)


def _check(logits: Tensor, labels: Tensor) -> None:
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[1] < 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a (N, K) tensor with K >= 2 classes, got {shape}")
    if not isinstance(labels, Tensor) or labels.shape != logits.shape[:1]:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a ({logits.shape[0]},) tensor of classes, got {shape}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got {labels.unique()}")


def reliability_table(logits: Tensor, labels: Tensor, bins: int = 10) -> pd.DataFrame:
    """One row per equal-width confidence bin: its range, size, mean confidence and accuracy.

    logits: (N, K); labels: (N,). Confidence is the top softmax probability; a prediction is
    right when its argmax is the label. Empty bins have count 0 and NaN means.
    """
    _check(logits, labels)
    check_int("bins", bins, 1)
    probs = torch.softmax(logits.float(), dim=1)
    confidence, predicted = probs.max(dim=1)
    right = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    # Bin i holds confidences in (edges[i], edges[i + 1]]; confidence is always > 1/K > 0.
    index = (torch.bucketize(confidence, edges, right=False) - 1).clamp(0, bins - 1)
    rows = []
    for i in range(bins):
        mask = index == i
        n = int(mask.sum())
        rows.append(
            {
                "low": edges[i].item(),
                "high": edges[i + 1].item(),
                "count": n,
                "confidence": confidence[mask].mean().item() if n else float("nan"),
                "accuracy": right[mask].mean().item() if n else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(logits: Tensor, labels: Tensor, bins: int = 10) -> float:
    """ECE (Guo et al. 2017) over ``bins`` equal-width confidence bins, in [0, 1].

    logits: (N, K); labels: (N,).
    """
    table = reliability_table(logits, labels, bins)
    full = table[table["count"] > 0]
    gaps = (full["accuracy"] - full["confidence"]).abs()
    return float((full["count"] * gaps).sum() / full["count"].sum())


def confidence_summary(logits: Tensor, labels: Tensor, bins: int = 10) -> dict[str, float]:
    """Accuracy, mean top probability, mean logit gap (top logit minus the mean of the others),
    and ECE, for one model's logits (N, K) and labels (N,)."""
    _check(logits, labels)
    logits = logits.float()
    top = logits.max(dim=1).values
    rest = (logits.sum(dim=1) - top) / (logits.shape[1] - 1)
    return {
        "accuracy": (logits.argmax(dim=1) == labels).float().mean().item(),
        "confidence": torch.softmax(logits, dim=1).max(dim=1).values.mean().item(),
        "logit gap": (top - rest).mean().item(),
        "ECE": expected_calibration_error(logits, labels, bins),
    }


def smoothed_optimum_gap(epsilon: float, num_classes: int) -> float:
    """The logit gap that minimises label-smoothed cross-entropy: log((1 - e + e/K) / (e/K)).

    With smoothing ``epsilon`` the target puts 1 - e + e/K on the true class and e/K on each
    other class; the loss is smallest when the softmax equals the target, i.e. when the true
    logit exceeds every other by this gap. Without smoothing (e = 0) the gap is infinite.
    """
    check_int("num_classes", num_classes, 2)
    if not 0 <= epsilon < 1:
        raise ValueError(f"epsilon must be in [0, 1), got {epsilon!r}")
    if epsilon == 0:
        return float("inf")
    other = epsilon / num_classes
    return float(np.log((1 - epsilon + other) / other))
