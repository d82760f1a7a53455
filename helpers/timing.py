"""Side-by-side timing of training steps: the one measurement loop behind every speed table.

Times on a shared machine are noisy, so the course never reports one absolute time: the
contenders take turns, in alternating order, in every repeat (load from other processes then
slows all of them alike) and the median per contender is compared as a ratio::

    seconds = training_step_times({"resnet20": resnet20(), "se": se_resnet20()}, x, y)
    seconds = training_step_times(
        {"fp32": Contender(net_a), "bf16": Contender(net_b, amp="bf16", channels_last=True)}, x, y
    )

This module sits at the bottom of the package (it imports only ``helpers.validate``), so the
trainer's precision chooser (``helpers.train.precision``), the measurement tables
(``helpers.measurement``) and ``benchmarks/`` all time with it.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from helpers.validate import check_int

__all__ = [
    "Contender",
    "autocast_for",
    "median_step_times",
    "sgd_step",
    "training_step_times",
]

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_for(device: torch.device, amp: str | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``amp`` ("bf16", "fp16") on ``device``, or a no-op for None."""
    if amp is None:
        return contextlib.nullcontext()
    if amp not in _DTYPES:
        raise ValueError(f"amp must be 'bf16', 'fp16' or None, got {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("fp16 autocast needs a CUDA device here; use amp='bf16' on a CPU")
    return torch.autocast(device.type, dtype=_DTYPES[amp])


def sgd_step(
    model: nn.Module, x: Tensor, y: Tensor, amp: str | None = None, lr: float = 1e-3
) -> Callable[[], None]:
    """A closure that runs one SGD training step of ``model`` on x: (B, C, H, W), y: (B,).

    Forward and cross-entropy under ``amp`` autocast, backward outside it (torch's AMP recipe),
    then the optimiser step. The optimiser is built once, here, so a call times only the step.
    """
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    def step() -> None:
        with autocast_for(x.device, amp):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # CUDA runs asynchronously: wait for the step to finish
        torch.cuda.synchronize(device)


def median_step_times(
    steps: Mapping[str, Callable[[], None]],
    device: torch.device,
    *,
    repeats: int,
    warmup: int = 1,
) -> dict[str, float]:
    """Median seconds per call of each ``{name: step}``, the steps taking turns.

    ``warmup`` untimed calls each first (allocator, kernel selection); then ``repeats`` rounds
    in which every step runs once, in alternating order, timed with a device sync around it.
    """
    check_int("repeats", repeats, 1)
    check_int("warmup", warmup, 0)
    if not steps:
        raise ValueError("steps must name at least one {name: step function}")
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            _sync(device)
            start = time.perf_counter()
            steps[name]()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


@dataclass(frozen=True)
class Contender:
    """One model in a :func:`training_step_times` race, with its precision and memory layout.

    ``amp``: None (fp32), "bf16" or "fp16" autocast; ``channels_last``: train in NHWC layout
    (the model's weights and the batch both converted). The model is trained in place.
    """

    model: nn.Module
    amp: str | None = None
    channels_last: bool = False


def training_step_times(
    contenders: Mapping[str, nn.Module | Contender],
    x: Tensor,
    y: Tensor,
    *,
    repeats: int = 5,
    warmup: int = 1,
) -> dict[str, float]:
    """Median seconds per training step of each contender, the contenders taking turns.

    contenders: ``{name: model}`` (fp32, default layout) or ``{name: Contender(model, amp,
    channels_last)}``; each model lives on x's device and trains in place (pass copies to keep
    the originals): forward and cross-entropy under its autocast, backward, an SGD step, on
    the one fixed batch x: (B, C, H, W), y: (B,). After ``warmup`` untimed steps each, the
    contenders alternate, in alternating order, for ``repeats`` timed steps.
    """
    if not isinstance(contenders, Mapping) or not contenders:
        raise ValueError("contenders must be a non-empty dict {name: model or Contender}")
    steps = {}
    for name, entry in contenders.items():
        spec = entry if isinstance(entry, Contender) else Contender(entry)
        if not isinstance(spec.model, nn.Module):
            raise TypeError(f"contenders[{name!r}] must be an nn.Module or a Contender")
        model = spec.model.train()
        batch = x
        if spec.channels_last:
            model.to(memory_format=torch.channels_last)
            batch = x.contiguous(memory_format=torch.channels_last)
        steps[name] = sgd_step(model, batch, y, spec.amp)
    return median_step_times(steps, x.device, repeats=repeats, warmup=warmup)
