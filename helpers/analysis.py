"""Look inside a network: parameter counts, multiply-adds, shapes per stage, gradient norms.

Everything here works on any ``nn.Module``; the stage grouping (stem, layer1.., head) follows
the top-level module names of torchvision's and ``helpers.models``' ResNets (conv1, bn1,
act1/relu, maxpool, layer1..layerN, avgpool, dropout, fc).

FLOPs convention: :func:`count_flops` reports **multiply-adds (MACs)**, the unit of He et al.
(2016) and of torchvision's "GFLOPS" column (ResNet50: 4.1 G). ``torch.utils.flop_counter``
counts one multiply and one add as 2 FLOPs, so MACs = FLOPs / 2. Only convolutions and
matrix products are counted; batch norm, activations, pooling and the residual additions
add well under 1 % and are left out, as in the papers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from helpers.train.evaluation import eval_mode

__all__ = [
    "count_flops",
    "count_parameters",
    "gradient_norms",
    "parameters_per_stage",
    "shape_table",
    "stage_of",
]

_STEM = {"conv1", "bn1", "relu", "act1", "maxpool", "stem"}
_POOL = {"avgpool", "global_pool", "pool"}
_HEAD = {"dropout", "fc", "head", "classifier"}
_SHORTCUT_NAMES = ("downsample", "shortcut")


def _check_module(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")


def stage_of(top_level_name: str, *, split_head: bool = False) -> str:
    """The stage a top-level module belongs to: 'stem', 'layerN', 'head' (or 'pool'/'fc').

    With ``split_head=True`` the head is split into 'pool' (global pooling) and 'fc'
    (dropout + classifier), as in a shape table. Unknown names are their own stage.
    """
    if top_level_name in _STEM:
        return "stem"
    if top_level_name in _POOL:
        return "pool" if split_head else "head"
    if top_level_name in _HEAD:
        return "fc" if split_head else "head"
    return top_level_name


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Number of parameters: ``{"total": ..., "trainable": ...}`` (shared ones counted once)."""
    _check_module(model)
    params = list(model.parameters())  # .parameters() already skips duplicates
    return {
        "total": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
    }


def parameters_per_stage(model: nn.Module) -> pd.DataFrame:
    """Parameters per stage (stem, layer1.., head) with their share of the total.

    Returns a DataFrame with columns ``stage``, ``params``, ``percent`` in network order.
    """
    _check_module(model)
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        stage = stage_of(name.split(".")[0])
        counts[stage] = counts.get(stage, 0) + p.numel()
    total = sum(counts.values())
    return pd.DataFrame(
        {
            "stage": list(counts),
            "params": list(counts.values()),
            "percent": [100.0 * c / total if total else 0.0 for c in counts.values()],
        }
    )


def _check_input_size(input_size: Sequence[int]) -> tuple[int, ...]:
    size = tuple(input_size) if isinstance(input_size, (tuple, list, torch.Size)) else None
    if not size or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(
            f"input_size must be a tuple of positive ints like (1, 3, 224, 224), got {input_size!r}"
        )
    return size


def _run_on_meta(model: nn.Module, input_size: tuple[int, ...]) -> Tensor:
    """Run ``model`` on a shape-only (meta) copy of its tensors: no memory, no arithmetic."""
    meta = {
        name: torch.empty_like(t, device="meta")
        for name, t in [*model.named_parameters(), *model.named_buffers()]
    }
    x = torch.empty(input_size, device="meta")
    with eval_mode(model), torch.no_grad():
        return torch.func.functional_call(model, meta, (x,))


def count_flops(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> int:
    """Multiply-adds (MACs) of one forward pass at ``input_size`` (N, C, H, W).

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (which reports FLOPs = 2 x MACs)
    on meta tensors, so even ResNet152 at 224x224 takes a fraction of a second and no memory.
    The count is for the whole batch: divide by N for per-image numbers.
    """
    _check_module(model)
    size = _check_input_size(input_size)
    with FlopCounterMode(display=False) as counter:
        _run_on_meta(model, size)
    return counter.get_total_flops() // 2


def shape_table(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> pd.DataFrame:
    """Output shape, parameters and multiply-adds of each stage for an input of ``input_size``.

    One row for the input, then one per stage in execution order: stem, layer1.., pool, fc.
    Columns: ``stage``, ``modules`` (top-level modules in the row), ``output_shape`` (tuple),
    ``channels``, ``height``, ``width``, ``downsampling`` (input height / output height),
    ``params``, ``macs``. Runs on meta tensors (shapes only), recorded by forward hooks.
    """
    _check_module(model)
    size = _check_input_size(input_size)
    outputs: list[tuple[str, tuple[int, ...]]] = []

    def hook(name: str) -> Callable[..., None]:
        def record(module: nn.Module, args: Any, output: Any) -> None:
            if isinstance(output, Tensor):
                outputs.append((name, tuple(output.shape)))

        return record

    handles = [child.register_forward_hook(hook(n)) for n, child in model.named_children()]
    try:
        with FlopCounterMode(display=False) as counter:
            _run_on_meta(model, size)
    finally:
        for h in handles:
            h.remove()

    # FlopCounterMode names modules "<RootClass>.<path>"; keep the top-level part.
    macs_of: dict[str, int] = {}
    for key, ops in counter.get_flop_counts().items():
        parts = key.split(".")
        if len(parts) == 2:
            macs_of[parts[1]] = sum(ops.values()) // 2
    params_of = {
        n: sum(p.numel() for p in child.parameters()) for n, child in model.named_children()
    }

    rows: list[dict[str, Any]] = [
        {"stage": "input", "modules": "", "output_shape": size, "params": 0, "macs": 0}
    ]
    for name, shape in outputs:
        stage = stage_of(name, split_head=True)
        if rows[-1]["stage"] == stage and rows[-1]["modules"]:
            row = rows[-1]
            row["modules"] += f", {name}"
            row["output_shape"] = shape
        else:
            row = {"stage": stage, "modules": name, "output_shape": shape, "params": 0, "macs": 0}
            rows.append(row)
        row["params"] += params_of.get(name, 0)
        row["macs"] += macs_of.get(name, 0)

    table = pd.DataFrame(rows)
    shapes = table["output_shape"]
    table["channels"] = pd.array([s[1] if len(s) > 1 else None for s in shapes], dtype="Int64")
    table["height"] = pd.array([s[2] if len(s) == 4 else None for s in shapes], dtype="Int64")
    table["width"] = pd.array([s[3] if len(s) == 4 else None for s in shapes], dtype="Int64")
    # How many input pixels (per side) one output position summarises.
    table["downsampling"] = [
        size[2] / s[2] if len(s) == 4 and len(size) == 4 else math.nan for s in shapes
    ]
    columns = ["stage", "modules", "output_shape", "channels", "height", "width"]
    return table[[*columns, "downsampling", "params", "macs"]]


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
