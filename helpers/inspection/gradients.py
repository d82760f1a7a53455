"""Gradient norms per layer: how strongly the loss reaches each weight (notebook 01).

He et al. ("Deep Residual Learning for Image Recognition") trace the degradation problem of
deep plain networks to optimisation, not overfitting; the norm of each layer's weight gradient
after one backward pass shows how a plain network's signal fades with depth where a residual
one keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from helpers.inspection.structure import _SHORTCUT_NAMES, _check_module

__all__ = ["gradient_norms"]


def gradient_norms(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> pd.DataFrame:
    """L2 norm of the loss gradient of every conv / linear weight after one backward pass.

    x: (N, C, H, W) float; y: (N,) int64 class labels; ``loss_fn(logits, y)`` defaults to
    cross-entropy. The model runs in its current mode (``model.train()`` for training-time
    batch norm) but is left unchanged: gradients go through ``torch.autograd.grad`` (``.grad``
    fields untouched) and batch-norm running statistics are restored afterwards.

    Returns a DataFrame in network order with columns ``layer`` (module name), ``depth``
    (1-based index of the weighted layer on the main path, the layers that make "ResNet-56"
    56 deep), ``shortcut`` (True for projection shortcuts, which take the depth of the layer
    they run alongside), ``kind`` ("conv"/"linear"), ``numel`` and ``grad_norm``.
    """
    _check_module(model)
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
    if y.dim() != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"y must be (N,) labels matching x's batch size {x.shape[0]}, got {tuple(y.shape)}"
        )
    loss_fn = F.cross_entropy if loss_fn is None else loss_fn

    layers = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad
    ]
    if not layers:
        raise ValueError("the model has no trainable Conv2d or Linear weights")

    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    try:
        loss = loss_fn(model(x), y)
        if loss.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
        grads = torch.autograd.grad(loss, [m.weight for _, m in layers], allow_unused=True)
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(saved[name])

    rows, depth = [], 0
    for (name, m), g in zip(layers, grads, strict=True):
        is_shortcut = any(part in _SHORTCUT_NAMES for part in name.split("."))
        if not is_shortcut:
            depth += 1
        rows.append(
            {
                "layer": name,
                "depth": max(depth, 1),
                "shortcut": is_shortcut,
                "kind": "linear" if isinstance(m, nn.Linear) else "conv",
                "numel": m.weight.numel(),
                "grad_norm": math.nan if g is None else g.norm().item(),
            }
        )
    return pd.DataFrame(rows)
