"""Running a trained model over a loader: ``evaluate``, ``predict``, ``confusion_matrix``.

Also the small pieces :func:`helpers.train.fit` shares with them: devices, mixed precision,
and the checks that turn a batch that does not fit the model into a clear error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from helpers import config

__all__ = ["AMP_MODES", "confusion_matrix", "evaluate", "predict"]

AMP_MODES = ("fp16", "bf16", None)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    device: torch.device | str | None = None,
    amp: str | None = None,
    channels_last: bool = False,
) -> dict[str, float]:
    """Mean cross-entropy loss, top-1 and top-5 accuracy of ``model`` over ``loader``.

    Batches are x: (B, C, H, W) float, y: (B,) int64. The model runs in eval mode (its
    previous mode is restored after). ``top5`` counts a hit when the label is among the
    ``min(5, num_classes)`` highest logits. ``device`` defaults to where the model's
    parameters are. Returns ``{"loss", "acc", "top5"}`` with accuracies in [0, 1].
    """
    dev = model_device(model) if device is None else resolve_device(device)
    amp = check_amp(amp, dev)
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    hits1 = torch.zeros((), dtype=torch.int64, device=dev)
    hits5 = torch.zeros((), dtype=torch.int64, device=dev)
    count = 0
    with eval_mode(model):
        for i, (x, y) in enumerate(batches(loader, dev, channels_last)):
            with autocast(dev, amp):
                logits = model(x)
            check_outputs(logits, x, y, f"evaluation batch {i + 1}")
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices  # (B, k)
            hit = top == y[:, None]
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
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes (argmax of the logits) and true labels: both (N,) int64, on the CPU."""
    dev = model_device(model) if device is None else resolve_device(device)
    amp = check_amp(amp, dev)
    preds, targets = [], []
    with eval_mode(model):
        for i, (x, y) in enumerate(batches(loader, dev, channels_last)):
            with autocast(dev, amp):
                logits = model(x)
            check_outputs(logits, x, y, f"prediction batch {i + 1}")
            preds.append(logits.argmax(dim=1).cpu())
            targets.append(y.cpu())
    if not preds:
        raise ValueError("the loader yielded no batches: nothing to predict")
    return torch.cat(preds), torch.cat(targets)


def confusion_matrix(
    model: nn.Module, loader: Iterable, num_classes: int, **kwargs: Any
) -> torch.Tensor:
    """(K, K) int64 counts: row = true class, column = predicted class (scikit-learn's layout).

    ``kwargs`` go to :func:`predict` (``device``, ``amp``, ``channels_last``).
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    preds, targets = predict(model, loader, **kwargs)
    top = int(torch.maximum(preds.max(), targets.max()))
    if top >= num_classes:
        raise ValueError(
            f"num_classes={num_classes}, but the model predicts or the data holds class {top}"
        )
    pairs = targets * num_classes + preds
    return torch.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode for the ``with`` block, then restore the mode it had.

    Eval mode makes BatchNorm use its running statistics (batch size 1 works, nothing is
    updated) and turns Dropout off.
    """
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------------------------
# Shared with fit


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a torch.device; ``helpers.config.device()`` when None."""
    if device is None:
        return config.device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be a torch.device or a string such as 'cuda:0', got {device!r}"
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}, but CUDA is not available on this machine")
    return dev


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters (or buffers) live; the default device if it has none."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return config.device()


def check_amp(amp: Any, dev: torch.device) -> str | None:
    """Validate a mixed-precision mode for ``dev``: "fp16" (CUDA only), "bf16" or None."""
    if amp in (None, "off"):
        return None
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be 'fp16', 'bf16' or None, got {amp!r}")
    if amp == "fp16" and dev.type != "cuda":
        raise ValueError(
            f"amp='fp16' needs a CUDA device (fp16 training relies on a GradScaler), but the "
            f"device is {dev}; on a CPU use amp='bf16' or amp=None"
        )
    if amp == "bf16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"amp='bf16' is not supported by {torch.cuda.get_device_name(dev)}")
    return amp


def autocast(dev: torch.device, amp: str | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for the mode, or a no-op context without mixed precision."""
    if amp is None:
        return contextlib.nullcontext()
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast(device_type=dev.type, dtype=dtype)


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
        x = x.to(dev, non_blocking=True)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
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
    num_classes = logits.shape[1]
    low, high = (int(v) for v in torch.aminmax(y))
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"labels must be class indices in [0, {num_classes}) because the model has "
            f"{num_classes} outputs, but {where} holds labels from {low} to {high}. "
            "Was the model built with the data set's num_classes?"
        )
