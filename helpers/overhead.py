"""What does a change to the network cost? Training-step time of several models, side by side.

Parameters and multiply-adds are exact (``helpers.analysis``); time is not: it depends on the
machine and on what else runs on it. So time the models in one run, alternating between them
in every repeat (load from other processes then slows all of them alike), and report each as a
ratio to a baseline::

    seconds = train_step_times({"resnet50": models.resnet50, "se": models.se_resnet50}, x, y)
    ratios = {name: s / seconds["resnet50"] for name, s in seconds.items()}
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from helpers.validate import check_int

__all__ = ["train_step_times"]


def _train_step(model: nn.Module, x: Tensor, y: Tensor) -> Callable[[], None]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def train_step_times(
    factories: Mapping[str, Callable[[], nn.Module]],
    x: Tensor,
    y: Tensor,
    *,
    repeats: int = 5,
    warmup: int = 1,
) -> dict[str, float]:
    """Median seconds per training step (forward, cross-entropy, backward, SGD) per model.

    factories: ``{name: f}``, ``f()`` builds the model (moved to x's device, train mode).
    x: (B, C, H, W) and y: (B,) is the one batch every step uses. After ``warmup`` untimed
    steps each, the models take turns, in alternating order, for ``repeats`` timed steps.
    """
    check_int("repeats", repeats, 1)
    check_int("warmup", warmup, 0)
    if not isinstance(factories, Mapping) or not factories:
        raise ValueError("factories must be a non-empty dict {name: function building a model}")
    steps = {name: _train_step(f().to(x.device).train(), x, y) for name, f in factories.items()}
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            start = time.perf_counter()
            steps[name]()
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
