"""A network's structure: parameter counts, multiply-adds and shapes, per stage.

Everything here works on any ``nn.Module``; the stage grouping (stem, layer1.., head) follows
the model API of ``helpers.models`` (``model.stage_names``; the stem is every top-level module
before the first stage, the head ``fc`` and the pooling between), and for other ResNets
(torchvision, timm) the top-level modules named ``layer1``, ``layer2``, ...

FLOPs convention: :func:`count_flops` reports **multiply-adds (MACs)**, the unit of He et al.
(2016) and of torchvision's "GFLOPS" column (ResNet50: 4.1 G). ``torch.utils.flop_counter``
counts one multiply and one add as 2 FLOPs, so MACs = FLOPs / 2. Only convolutions and
matrix products are counted; batch norm, activations, pooling and the residual additions
add well under 1 % and are left out, as in the papers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from helpers.eval_mode import eval_mode

__all__ = [
    "count_flops",
    "count_parameters",
    "macs_per_stage",
    "parameters_per_stage",
    "shape_table",
    "stage_names",
    "stage_of",
]

_SHORTCUT_NAMES = ("downsample", "shortcut")


def _check_module(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")


def stage_names(model: nn.Module) -> tuple[str, ...]:
    """The residual stages of ``model`` in order, e.g. ``("layer1", ..., "layer4")``.

    ``model.stage_names`` where the model has it (``helpers.models``), else the top-level
    modules named ``layer<N>`` (torchvision's and timm's ResNets); ``()`` for other models.
    """
    _check_module(model)
    names = getattr(model, "stage_names", None)
    if names is not None:
        return tuple(names)
    return tuple(n for n, _ in model.named_children() if re.fullmatch(r"layer\d+", n))


def _stage_map(model: nn.Module, split_head: bool) -> dict[str, str]:
    """Top-level module name -> stage: 'stem', 'layerN', 'head' (or 'pool' / 'fc')."""
    stages = stage_names(model)
    children = [n for n, _ in model.named_children()]
    if not stages:
        return {n: n for n in children}  # no ResNet layout: every module is its own stage
    first, last = children.index(stages[0]), children.index(stages[-1])
    mapping = {}
    for i, name in enumerate(children):
        if name in stages:
            mapping[name] = name
        elif i < first:
            mapping[name] = "stem"
        elif i > last and split_head:
            mapping[name] = "fc" if name == "fc" else "pool"  # the head is always `fc`
        elif i > last:
            mapping[name] = "head"
        else:
            mapping[name] = name
    return mapping


def stage_of(model: nn.Module, top_level_name: str, *, split_head: bool = False) -> str:
    """The stage of a top-level module of ``model``: 'stem', 'layerN', 'head' (or 'pool'/'fc').

    The stem is every module before the first stage (:func:`stage_names`), the head every
    module after the last. With ``split_head=True`` the head is split into 'fc' (the
    classifier ``fc``) and 'pool' (global pooling, flatten), as in a shape table. Models
    without stages, and unknown names, give the name itself.
    """
    return _stage_map(model, split_head).get(top_level_name, top_level_name)


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
    stage_map = _stage_map(model, split_head=False)
    for name, p in model.named_parameters():
        top = name.split(".")[0]
        stage = stage_map.get(top, top)
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

    stage_map = _stage_map(model, split_head=True)
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
        stage = stage_map.get(name, name)
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


def macs_per_stage(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> pd.DataFrame:
    """Multiply-adds of each stage (stem, layer1.., pool, fc) and of one block in each stage.

    Columns: ``stage``, ``blocks`` (residual blocks in the stage; 0 for stem and head),
    ``macs``, ``macs_per_block`` (``macs / blocks``; NaN outside the residual stages) and
    ``percent`` of the whole network, for an input of ``input_size`` (N, C, H, W).
    """
    table = shape_table(model, input_size)
    table = table[table["stage"] != "input"].reset_index(drop=True)
    residual = set(stage_names(model))
    blocks = [len(getattr(model, s)) if s in residual else 0 for s in table["stage"]]
    total = table["macs"].sum()
    return pd.DataFrame(
        {
            "stage": table["stage"],
            "blocks": blocks,
            "macs": table["macs"],
            "macs_per_block": [
                m / b if b else math.nan for m, b in zip(table["macs"], blocks, strict=True)
            ],
            "percent": 100.0 * table["macs"] / total if total else 0.0,
        }
    )
