"""Running a trained model over a loader: ``evaluate``, ``predict``, ``confusion_matrix``.

Also the batch plumbing :func:`helpers.train.fit` shares with them: moving ``(x, y)`` batches
to the device, and the checks that turn a batch that does not fit the model into a clear error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from helpers.eval_mode import eval_mode
from helpers.train.precision import autocast, check_amp, model_device, resolve_device, to_layout
from helpers.validate import check_int

__all__ = ["batches", "check_labels", "check_outputs", "confusion_matrix", "evaluate", "predict"]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    device: torch.device | str | None = None,
    amp: str | None = None,
    channels_last: bool = False,
    tta: bool = False,
) -> dict[str, float]:
    """Mean cross-entropy loss, top-1 and top-5 accuracy of ``model`` over ``loader``.

    Batches are x: (B, C, H, W) float, y: (B,) int64. The model runs in eval mode (its
    previous mode is restored after). ``top5`` counts a hit when the label is among the
    ``min(5, num_classes)`` highest scores. ``device`` defaults to where the model's
    parameters are. ``tta=True`` adds horizontal-flip test-time augmentation: the prediction
    is the mean of the softmaxes of x and of x mirrored left-right, and the loss is the
    negative log of that mean. Returns ``{"loss", "acc", "top5"}``, accuracies in [0, 1].
    """
    loss_sum = hits1 = hits5 = None
    count = 0
    for scores, y in _scores(model, loader, device, amp, channels_last, tta, "evaluation"):
        if loss_sum is None:
            loss_sum = torch.zeros((), dtype=torch.float64, device=y.device)
            hits1 = torch.zeros((), dtype=torch.int64, device=y.device)
            hits5 = torch.zeros((), dtype=torch.int64, device=y.device)
        loss_sum += F.cross_entropy(scores, y, reduction="sum").double()
        hit = scores.topk(min(5, scores.shape[1]), dim=1).indices == y[:, None]  # (B, k)
        hits1 += hit[:, 0].sum()
        hits5 += hit.any(dim=1).sum()
        count += len(y)
    if count == 0:
        raise ValueError("the loader yielded no batches: nothing to evaluate")
    return {
        "loss": loss_sum.item() / count,
        "acc": hits1.item() / count,
        "top5": hits5.item() / count,
    }


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable,
    *,
    device: torch.device | str | None = None,
    amp: str | None = None,
    channels_last: bool = False,
    tta: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes (argmax) and true labels: both (N,) int64, on the CPU.

    ``tta`` as in :func:`evaluate`.
    """
    preds, targets = [], []
    for scores, y in _scores(model, loader, device, amp, channels_last, tta, "prediction"):
        preds.append(scores.argmax(dim=1).cpu())
        targets.append(y.cpu())
    if not preds:
        raise ValueError("the loader yielded no batches: nothing to predict")
    return torch.cat(preds), torch.cat(targets)


def confusion_matrix(
    model: nn.Module, loader: Iterable, num_classes: int, **kwargs: Any
) -> torch.Tensor:
    """(K, K) int64 counts: row = true class, column = predicted class (scikit-learn's layout).

    ``kwargs`` go to :func:`predict` (``device``, ``amp``, ``channels_last``, ``tta``).
    """
    check_int("num_classes", num_classes, 1)
    preds, targets = predict(model, loader, **kwargs)
    top = int(torch.maximum(preds.max(), targets.max()))
    if top >= num_classes:
        raise ValueError(
            f"num_classes={num_classes}, but the model predicts or the data holds class {top}"
        )
    pairs = targets * num_classes + preds
    return torch.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


def _scores(
    model: nn.Module,
    loader: Iterable,
    device: torch.device | str | None,
    amp: str | None,
    channels_last: bool,
    tta: bool,
    what: str,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The one evaluation loop: (float32 scores (B, K), labels (B,)) per batch, in eval mode.

    Scores are the logits, or with ``tta`` the log of the mean softmax of x and x flipped
    (cross-entropy and argmax treat both alike: log_softmax of a log-probability is itself).
    """
    dev = model_device(model) if device is None else resolve_device(device)
    amp = check_amp(amp, dev)
    with eval_mode(model):
        for i, (x, y) in enumerate(batches(loader, dev, channels_last)):
            with autocast(dev, amp):
                logits = model(x)
            check_outputs(logits, x, y, f"{what} batch {i + 1}")
            scores = logits.float()
            if tta:
                if x.dim() != 4:
                    raise ValueError(
                        f"tta flips images: x must be (B, C, H, W), got {tuple(x.shape)}"
                    )
                with autocast(dev, amp):
                    mirrored = model(x.flip(-1)).float()
                both = torch.stack([scores.log_softmax(1), mirrored.log_softmax(1)])
                scores = torch.logsumexp(both, dim=0) - math.log(2)
            yield scores, y


def batches(
    loader: Iterable, dev: torch.device, channels_last: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's ``(x, y)`` batches on ``dev`` (x in channels-last layout if asked)."""
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            size = f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""
            raise TypeError(f"each batch must be a pair (x, y), got a {type(batch).__name__}{size}")
        x, y = batch
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError(
                f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}"
            )
        x = to_layout(x.to(dev, non_blocking=True), channels_last)
        yield x, y.to(dev, non_blocking=True)


def check_outputs(logits: Any, x: torch.Tensor, y: torch.Tensor, where: str) -> None:
    """Logits (B, K) and labels (B,) int64 in [0, K), or a clear error naming ``where``."""
    if y.dtype != torch.int64 or y.dim() != 1:
        raise TypeError(
            f"labels y must be int64 class indices of shape (B,), got {y.dtype} of shape "
            f"{tuple(y.shape)} in {where}"
        )
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        got = (
            f"shape {tuple(logits.shape)}"
            if isinstance(logits, torch.Tensor)
            else type(logits).__name__
        )
        raise ValueError(f"the model must return logits (B, num_classes), got {got} in {where}")
    if not logits.shape[0] == len(y) == len(x):
        raise ValueError(
            f"batch sizes disagree in {where}: x has {len(x)} rows, y has {len(y)}, the model "
            f"returned {logits.shape[0]}"
        )
    check_labels(y, logits.shape[1], where)


def check_labels(y: torch.Tensor, num_classes: int, where: str) -> None:
    """Labels y (B,) int64 in [0, num_classes), or ValueError naming ``where`` (one aminmax)."""
    if not len(y):
        return
    low, high = (int(v) for v in torch.aminmax(y))
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"labels must be class indices in [0, {num_classes}) because the model has "
            f"{num_classes} outputs, but {where} holds labels from {low} to {high}. "
            "Was the model built with the data set's num_classes?"
        )
