"""Attention read out: the gates of SE / CBAM modules, and how class-specific they are.

:func:`attention_maps` records the channel weights and spatial maps of every attention module
of ``helpers.models`` for a batch.

How class-specific are attention weights? Per-class means and a between-class variance share.

Hu et al. ("Squeeze-and-Excitation Networks", section 7.2, Fig. 6) plot the mean excitation of
an SE block per class and observe that early blocks weigh channels alike for every class, and
later blocks differently per class. This module turns that picture into numbers::

    maps = helpers.inspection.attention_maps(model, images)       # {name: AttentionMap}
    per_class = class_means(maps["layer3.0.se"].channel, labels)    # (K, C)
    class_specificity(maps["layer3.0.se"].channel, labels)         # 0: class-agnostic .. 1

``class_specificity`` is the share of the excitations' variance explained by the class (the
between-class sum of squares over the total, summed over channels: eta squared of a one-way
ANOVA). With few images per class it is biased upwards even for unrelated labels, by about
(K - 1) / (N - 1) for K classes and N images, so compare it with the same number for shuffled
labels (``shuffled_specificity``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from helpers.eval_mode import eval_mode
from helpers.inspection.structure import _check_module
from helpers.models.attention import CBAM, ChannelAttention, SpatialAttention, SqueezeExcitation
from helpers.validate import check_int

__all__ = [
    "AttentionMap",
    "attention_maps",
    "class_means",
    "class_specificity",
    "shuffled_specificity",
]


class AttentionMap(NamedTuple):
    """The gates of one attention module for a batch (``None`` where the module has none)."""

    channel: Tensor | None  # (N, C): one sigmoid weight per channel (SE, CBAM channel half)
    spatial: Tensor | None  # (N, 1, H, W): one sigmoid weight per position (CBAM spatial half)


def _attention_gates(module: nn.Module) -> dict[str, nn.Module] | None:
    """The ``gate`` modules of a helpers attention module by kind, or None if it is not one."""
    if isinstance(module, CBAM):
        return {"channel": module.channel.gate, "spatial": module.spatial.gate}
    if isinstance(module, (SqueezeExcitation, ChannelAttention)):
        return {"channel": module.gate}
    if isinstance(module, SpatialAttention):
        return {"spatial": module.gate}
    return None


def attention_maps(model: nn.Module, x: Tensor) -> dict[str, AttentionMap]:
    """Channel weights and spatial maps of every attention module for the batch ``x``.

    x: (N, C_in, H, W). Runs ``model(x)`` once in eval mode without gradients (the mode is
    restored afterwards) and records the sigmoid gates of each SqueezeExcitation,
    ChannelAttention, SpatialAttention and CBAM module of ``helpers.models`` by forward hooks,
    which are removed again. Returns ``{module name: AttentionMap(channel, spatial)}`` in
    network order (e.g. ``"layer1.0.se"``), with ``channel`` (N, C) and ``spatial``
    (N, 1, h, w) at the module's resolution, ``None`` where the module has no such gate (SE
    has no spatial map). A CBAM counts as one module (its two halves are not listed again).
    """
    _check_module(model)
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a tensor (N, C, H, W), got {type(x).__name__}")
    gate_modules: dict[str, dict[str, nn.Module]] = {}
    for name, module in model.named_modules():
        gates = _attention_gates(module)
        inside_cbam = any(name.startswith(f"{outer}.") for outer in gate_modules)
        if gates is not None and not inside_cbam:
            gate_modules[name] = gates
    if not gate_modules:
        raise ValueError(
            "the model has no attention modules (SqueezeExcitation, ChannelAttention, "
            "SpatialAttention or CBAM of helpers.models); build it with attention='se' or 'cbam'"
        )

    recorded: dict[str, dict[str, Tensor]] = {name: {} for name in gate_modules}

    def hook(name: str, kind: str) -> Callable[..., None]:
        def record(module: nn.Module, args: Any, output: Tensor) -> None:
            recorded[name][kind] = output.detach()

        return record

    handles = [
        gate.register_forward_hook(hook(name, kind))
        for name, gates in gate_modules.items()
        for kind, gate in gates.items()
    ]
    try:
        with eval_mode(model), torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()

    maps = {}
    for name, gates in gate_modules.items():
        missing = set(gates) - set(recorded[name])
        if missing:
            raise RuntimeError(f"attention module {name!r} did not run in model(x)")
        channel = recorded[name].get("channel")
        maps[name] = AttentionMap(
            channel=None if channel is None else channel.flatten(1),
            spatial=recorded[name].get("spatial"),
        )
    return maps


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
