"""Side-by-side timing of training steps: the one measurement loop behind every speed table.

Times on a shared machine are noisy, so the course never reports one absolute time: the
contenders take turns, in alternating order, in every repeat (load from other processes then
slows all of them alike) and the median per contender is compared as a ratio. Used by
``helpers.train.precision`` (choosing a CPU precision), ``helpers.mixed_precision`` (notebook 04),
``helpers.overhead`` (notebook 05) and ``helpers.speed`` (notebook 08).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from helpers.validate import check_int

__all__ = ["autocast_for", "median_step_times", "sgd_step"]

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
