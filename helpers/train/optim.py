"""The optimiser and the learning-rate schedule of a :class:`TrainConfig`.

Parameter groups: weights (conv and linear, ndim > 1) get weight decay; BatchNorm scales and
shifts and biases (ndim 1) do not, unless ``decay_norm_and_bias``. Schedules are torch's,
stepped once per iteration, with an optional linear warm-up in front.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler, swa_utils

from helpers.train.config import TrainConfig, check_milestones

__all__ = [
    "WARMUP_START_FACTOR",
    "ema_model",
    "hyperparameters",
    "make_optimizer",
    "make_scheduler",
    "milestone_steps",
    "resolved_lr_and_decay",
    "scheduler_for",
]

# Linear warm-up starts at 1 % of the base learning rate (Goyal et al. 2017 ramp up from a
# small value; He et al. 2016 trained ResNet-110 at 10 % for its first 400 iterations).
WARMUP_START_FACTOR = 0.01


def resolved_lr_and_decay(config: TrainConfig) -> tuple[float, float]:
    """(lr, weight_decay) with None replaced by the optimiser's default."""
    sgd = config.optimizer == "sgd"
    lr = (0.1 if sgd else 1e-3) if config.lr is None else config.lr
    wd = (1e-4 if sgd else 0.01) if config.weight_decay is None else config.weight_decay
    return lr, wd


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over the trainable parameters, 1-d ones without weight decay by default."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:  # frozen layers (transfer learning) stay out of the optimizer
            (decay if p.ndim > 1 or config.decay_norm_and_bias else no_decay).append(p)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    lr, wd = resolved_lr_and_decay(config)
    groups = [
        {"params": params, "weight_decay": decay_value}
        for params, decay_value in ((decay, wd), (no_decay, 0.0))
        if params
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum, nesterov=config.nesterov)
    return torch.optim.AdamW(groups, lr=lr)


def hyperparameters(group: dict[str, Any]) -> dict[str, Any]:
    """A parameter group's settings (lr, momentum, weight_decay, ...) without its tensors."""
    plain = {}
    for key, value in group.items():
        value = list(value) if isinstance(value, tuple) else value
        if key != "params" and (value is None or isinstance(value, (int, float, bool, str, list))):
            plain[key] = value
    return plain


def milestone_steps(
    schedule: str | None, milestones: tuple[float, ...] | tuple[int, ...], epochs: int, steps: int
) -> list[int]:
    """Milestones as iteration numbers, from fractions of training (floats) or epochs (ints)."""
    if schedule != "step":
        return []
    if check_milestones(milestones, epochs) == "fractions":
        # At least one step before the first drop. In a very short run two fractions may
        # round to the same iteration: MultiStepLR then applies both drops there.
        return [max(1, round(m * epochs * steps)) for m in milestones]
    return [m * steps for m in milestones]


def make_scheduler(
    opt: torch.optim.Optimizer,
    schedule: str | None,
    *,
    total_steps: int,
    milestone_steps: list[int],
    gamma: float,
    warmup_steps: int,
) -> lr_scheduler.LRScheduler | None:
    """torch's schedulers, stepped once per iteration; a LinearLR warm-up goes first."""
    if schedule == "onecycle":
        cycle_momentum = "betas" in opt.defaults or opt.defaults.get("momentum", 0) > 0
        return lr_scheduler.OneCycleLR(
            opt,
            max_lr=[group["lr"] for group in opt.param_groups],
            total_steps=total_steps,
            cycle_momentum=cycle_momentum,
        )
    main: lr_scheduler.LRScheduler | None = None
    if schedule == "step":
        if milestone_steps[0] <= warmup_steps:
            raise ValueError(
                f"the first milestone (iteration {milestone_steps[0]}) falls inside the "
                f"warm-up ({warmup_steps} iterations)"
            )
        main = lr_scheduler.MultiStepLR(
            opt, [m - warmup_steps for m in milestone_steps], gamma=gamma
        )
    elif schedule == "cosine":
        main = lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps - warmup_steps)
    if warmup_steps == 0:
        return main
    warmup = lr_scheduler.LinearLR(
        opt, start_factor=WARMUP_START_FACTOR, end_factor=1.0, total_iters=warmup_steps
    )
    if main is None:
        return warmup
    return lr_scheduler.SequentialLR(opt, [warmup, main], milestones=[warmup_steps])


def scheduler_for(
    opt: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> lr_scheduler.LRScheduler | None:
    """The config's schedule over ``config.epochs * steps_per_epoch`` iterations."""
    return make_scheduler(
        opt,
        config.schedule,
        total_steps=config.epochs * steps_per_epoch,
        milestone_steps=milestone_steps(
            config.schedule, config.milestones, config.epochs, steps_per_epoch
        ),
        gamma=config.gamma,
        warmup_steps=round(config.warmup_epochs * steps_per_epoch),
    )


def ema_model(model: nn.Module, decay: float | None) -> swa_utils.AveragedModel | None:
    """An exponential moving average of ``model`` (None when ``decay`` is None).

    ``use_buffers=True`` averages the BatchNorm running statistics along with the weights,
    so the averaged model can be evaluated as it is.
    """
    if decay is None:
        return None
    return swa_utils.AveragedModel(
        model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(decay), use_buffers=True
    )
