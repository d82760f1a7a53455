"""The optimiser and the learning-rate schedule of a :class:`TrainConfig`.

Parameter groups: weights (conv and linear, ndim > 1) get weight decay; BatchNorm scales and
shifts and biases (ndim 1) do not, unless ``decay_norm_and_bias``. Schedules are torch's,
stepped once per iteration, with an optional linear warm-up in front.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler

from helpers.train.config import TrainConfig, check_milestones

__all__ = [
    "EMA",
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


class EMA(nn.Module):
    """An exponential moving average of a model's weights and buffers, on the model's device.

    Value for value what ``torch.optim.swa_utils.AveragedModel(model, use_buffers=True,
    multi_avg_fn=get_ema_multi_avg_fn(decay))`` computes, with the same state-dict keys
    (``n_averaged`` and ``module.*``), so checkpoints written with either load into both.
    The first update copies the model; each later one moves every floating-point tensor
    ``(1 - decay)`` of the way to the model's (one ``torch._foreach_lerp_`` per device and
    dtype). BatchNorm's running statistics are averaged too, so ``ema.module`` can be
    evaluated as it is.

    Why not AveragedModel itself: it keeps its counter ``n_averaged`` on the CPU and copies it
    to the model's device on every update (``self.n_averaged.to(device)``), a blocking copy
    that makes the host wait for the GPU at every training step. Here the host decides
    "copy or average" from a Python count, and only device kernels are launched.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.module = copy.deepcopy(model)
        self.decay = float(decay)
        # Kept for the state dict (AveragedModel's layout); the host reads self._count.
        self.register_buffer("n_averaged", torch.tensor(0, dtype=torch.long))
        self._count = 0
        self.register_load_state_dict_post_hook(EMA._count_from_buffer)

    @staticmethod
    def _count_from_buffer(module: nn.Module, incompatible_keys: Any) -> None:
        module._count = int(module.n_averaged)  # once per checkpoint load, not per step

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The averaged model's output."""
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """Fold ``model``'s current parameters and buffers into the average (no host sync)."""
        mine = [*self.module.parameters(), *self.module.buffers()]
        theirs = [*model.parameters(), *model.buffers()]
        if len(mine) != len(theirs):
            raise ValueError(
                f"the model has {len(theirs)} parameters and buffers, the average {len(mine)}"
            )
        pairs = [(a.detach(), b.detach().to(a.device)) for a, b in zip(mine, theirs, strict=True)]
        if self._count == 0:
            for averaged, current in pairs:
                averaged.copy_(current)
        else:
            groups: dict[tuple[torch.device, torch.dtype], list[tuple[torch.Tensor, ...]]] = {}
            for averaged, current in pairs:
                groups.setdefault((averaged.device, averaged.dtype), []).append((averaged, current))
            weight = 1 - self.decay
            for (_, dtype), group in groups.items():
                averaged_list, current_list = (list(t) for t in zip(*group, strict=True))
                if dtype.is_floating_point or dtype.is_complex:
                    torch._foreach_lerp_(averaged_list, current_list, weight)
                else:
                    # Integer buffers (BatchNorm's num_batches_tracked) as torch's
                    # get_ema_multi_avg_fn treats them: averaged in float, truncated back.
                    for averaged, current in group:
                        averaged.copy_(averaged * self.decay + current * weight)
        self._count += 1
        self.n_averaged.add_(1)


def ema_model(model: nn.Module, decay: float | None) -> EMA | None:
    """An exponential moving average of ``model`` (None when ``decay`` is None): :class:`EMA`."""
    if decay is None:
        return None
    return EMA(model, decay)
