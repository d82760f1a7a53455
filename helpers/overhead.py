"""What does a change to the network cost? Training-step time of several models, side by side.

Parameters and multiply-adds are exact (``helpers.analysis``); time is not: it depends on the
machine and on what else runs on it. So time the models in one run, alternating between them
in every repeat (load from other processes then slows all of them alike), and report each as a
ratio to a baseline::

    seconds = train_step_times({"resnet50": models.resnet50, "se": models.se_resnet50}, x, y)
    ratios = {name: s / seconds["resnet50"] for name, s in seconds.items()}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import Tensor, nn

from helpers.timing import median_step_times, sgd_step

__all__ = ["train_step_times"]


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
    if not isinstance(factories, Mapping) or not factories:
        raise ValueError("factories must be a non-empty dict {name: function building a model}")
    steps = {name: sgd_step(f().to(x.device).train(), x, y) for name, f in factories.items()}
    return median_step_times(steps, x.device, repeats=repeats, warmup=warmup)
