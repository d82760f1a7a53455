"""``TrainConfig``: every training hyperparameter once, with its type, default, help and check.

``fit``'s keyword arguments, the checkpoint's record of a run and the options of
``python -m helpers.train`` are all read from the fields below, so they cannot drift apart.
A new option is one :func:`setting` here plus the code that uses it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

from helpers.settings import parse_device
from helpers.validate import check_int

__all__ = ["AMP_MODES", "OPTIMIZERS", "SCHEDULES", "TrainConfig", "check_milestones", "setting"]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("step", "cosine", "onecycle", None)
AMP_MODES = ("fp16", "bf16", "auto", None)

Check = Callable[[str, Any], None]


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    check: Check | None = None,
    choices: Sequence[Any] | None = None,
    group: str = "optimisation",
    resume: bool = True,
) -> Any:
    """A TrainConfig field: its ``help`` text (also the CLI's), a ``check(name, value)``
    raising ValueError, the allowed ``choices``, its CLI ``group``, and whether a resumed
    run must agree on it (``resume``)."""
    metadata = {"help": help, "check": check, "choices": choices, "group": group}
    metadata["resume"] = resume
    return dataclasses.field(default=default, metadata=metadata)


# ---- checks: each raises ValueError naming the setting


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(low: float, high: float, *, low_open: bool, high_open: bool, none: bool = False):
    """A check that the value is a number in the interval (or None where ``none``)."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"

    def check(name: str, value: Any) -> None:
        if none and value is None:
            return
        ok = _is_number(value) and math.isfinite(value)
        ok = ok and (value > low if low_open else value >= low)
        ok = ok and (value < high if high_open else value <= high)
        if not ok:
            interval = f"a number in {left}{low}, {high}{right}"
            if (low, low_open, high) == (0, True, math.inf):
                interval = "a positive number"
            raise ValueError(
                f"{name} must be {interval}{' or None' if none else ''}, got {value!r}"
            )

    return check


_POSITIVE_OR_NONE = _number(0, math.inf, low_open=True, high_open=True, none=True)


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _one_of(choices: Sequence[Any], extra: str = "") -> Check:
    def check(name: str, value: Any) -> None:
        if value not in choices:
            raise ValueError(f"{name} must be one of {tuple(choices)}{extra}, got {value!r}")

    return check


def _int_or_none(minimum: int) -> Check:
    def check(name: str, value: Any) -> None:
        if value is not None:
            check_int(name, value, minimum)

    return check


def _milestone_values(name: str, value: Any) -> None:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"{name} must be a sequence of numbers, got {value!r}")


def _device(name: str, value: Any) -> None:
    if value is not None:
        parse_device(value, name)


def _path_or_none(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name} must be a path (str or os.PathLike) or None, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """The hyperparameters of one training run; the defaults are He et al. 2016's CIFAR recipe.

    Every field is also a keyword of :func:`helpers.train.fit` and an option of
    ``python -m helpers.train`` (``--warmup-epochs`` for ``warmup_epochs``; ``--no-progress``
    for a flag that defaults to True). Values are checked when the config is built::

        cfg = TrainConfig(epochs=30, schedule="cosine", warmup_epochs=1)
        fit(model, train_loader, val_loader, cfg, lr=0.05)  # keywords override fields
    """

    epochs: int = setting(
        help="number of passes over the training set", check=lambda n, v: check_int(n, v, 1)
    )
    optimizer: str = setting(
        "sgd",
        help="'sgd' (with momentum, nesterov) or 'adamw'; fit also takes a torch.optim "
        "object as optimizer= (then lr and weight_decay are its own)",
        check=_one_of(OPTIMIZERS, " (or pass a torch.optim.Optimizer to fit)"),
        choices=OPTIMIZERS,
    )
    lr: float | None = setting(
        None,
        help="learning rate; None: 0.1 for SGD (He et al.), 1e-3 for AdamW",
        check=_POSITIVE_OR_NONE,
    )
    momentum: float = setting(
        0.9, help="SGD momentum", check=_number(0, 1, low_open=False, high_open=True)
    )
    nesterov: bool = setting(False, help="Nesterov momentum (SGD)", check=_flag)
    weight_decay: float | None = setting(
        None,
        help="L2 weight decay; None: 1e-4 for SGD (He et al.), 0.01 for AdamW (torch's default)",
        check=_number(0, math.inf, low_open=False, high_open=True, none=True),
    )
    decay_norm_and_bias: bool = setting(
        False,
        help="decay BatchNorm scales/shifts and biases too (He et al. 2016 did; the default "
        "follows He et al. 2019, 'Bag of Tricks', who found it does not help)",
        check=_flag,
    )
    schedule: str | None = setting(
        "step",
        help="learning rate per iteration: 'step' (times gamma at each milestone), 'cosine' "
        "(annealed to 0), 'onecycle' (torch's OneCycleLR peaking at lr) or None (constant)",
        check=_one_of(SCHEDULES),
        choices=SCHEDULES,
    )
    milestones: tuple[float, ...] = setting(
        (0.5, 0.75),
        help="step schedule: fractions of training (0.5 0.75) or epochs (91 136)",
        check=_milestone_values,
    )
    gamma: float = setting(
        0.1, help="step schedule factor", check=_number(0, 1, low_open=True, high_open=False)
    )
    warmup_epochs: float = setting(
        0.0,
        help="linear warm-up from 1 % of lr over this many epochs (fractions allowed)",
        check=_number(0, math.inf, low_open=False, high_open=True),
    )
    label_smoothing: float = setting(
        0.0,
        help="label smoothing of the cross-entropy loss",
        check=_number(0, 1, low_open=False, high_open=True),
    )
    grad_clip: float | None = setting(
        None, help="clip the global L2 norm of the gradients to this value", check=_POSITIVE_OR_NONE
    )
    ema_decay: float | None = setting(
        None,
        help="keep an exponential moving average of the weights and BatchNorm statistics, "
        "updated every step with this decay (e.g. 0.999); validation uses it, and the model "
        "ends training with the averaged weights",
        check=_number(0, 1, low_open=True, high_open=True, none=True),
    )
    amp: str | None = setting(
        None,
        help="mixed precision: 'fp16' (CUDA only, with a GradScaler), 'bf16', None, or 'auto': "
        "chosen by the hardware and a few timed steps (fp16 + channels-last on CUDA; on a CPU "
        "bf16 only where it has native bf16 and is measured faster), which also sets "
        "channels_last; a resumed run keeps its checkpoint's choice",
        check=_one_of(AMP_MODES),
        choices=AMP_MODES,
        group="running",
    )
    channels_last: bool = setting(
        False,
        help="NHWC memory layout (faster convolutions on tensor-core GPUs)",
        check=_flag,
        group="running",
        resume=False,
    )
    compile: bool = setting(
        False,
        help="torch.compile the training forward pass: faster steps on a GPU after tens of "
        "seconds of compiling; on a CPU often no faster (measure: benchmarks/precision.py)",
        check=_flag,
        group="running",
        resume=False,
    )
    sync_bn: bool = setting(
        False,
        help="SyncBatchNorm under DistributedDataParallel (torchrun; CUDA only)",
        check=_flag,
        group="running",
    )
    tta: bool = setting(
        False,
        help="validate with horizontal-flip test-time augmentation (mean of the two softmaxes)",
        check=_flag,
        group="running",
    )
    device: str | None = setting(
        None,
        help="cpu, cuda, cuda:1 ...; None: helpers.settings.device()",
        check=_device,
        group="running",
        resume=False,
    )
    seed: int | None = setting(
        None,
        help="seed_everything(seed) first: fixes data order, augmentation and dropout",
        check=_int_or_none(0),
        group="running",
    )
    checkpoint_dir: str | None = setting(
        None,
        help="save checkpoint.pt here after every epoch and on Ctrl-C; resume from it",
        check=_path_or_none,
        group="running",
        resume=False,
    )
    progress: bool = setting(
        True,
        help="progress bars (else nothing; the CLI prints one line per epoch)",
        check=_flag,
        group="running",
        resume=False,
    )

    def __post_init__(self) -> None:
        # Plain values only, so that asdict() goes into a weights_only checkpoint and JSON.
        if isinstance(self.device, torch.device):
            object.__setattr__(self, "device", str(self.device))
        if isinstance(self.checkpoint_dir, os.PathLike):
            object.__setattr__(self, "checkpoint_dir", os.fspath(self.checkpoint_dir))
        if self.amp == "off":
            object.__setattr__(self, "amp", None)
        if isinstance(self.milestones, list):
            object.__setattr__(self, "milestones", tuple(self.milestones))
        for f in fields(self):
            if f.metadata["check"] is not None:
                f.metadata["check"](f.name, getattr(self, f.name))
        self._check_together()

    def _check_together(self) -> None:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"warmup_epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs!r}"
            )
        if self.warmup_epochs and self.schedule == "onecycle":
            raise ValueError("schedule='onecycle' has its own warm-up phase: leave warmup_epochs=0")
        if self.schedule == "step":
            check_milestones(self.milestones, self.epochs)

    @classmethod
    def build(
        cls, config: TrainConfig | None = None, overrides: Mapping[str, Any] | None = None
    ) -> TrainConfig:
        """``config`` with ``overrides`` applied (a new TrainConfig, checked).

        An unknown name is a TypeError listing the valid ones.
        """
        overrides = dict(overrides or {})
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise TypeError(
                f"unknown training setting(s) {', '.join(map(repr, unknown))}; valid: "
                f"{', '.join(valid)}"
            )
        if config is None:
            if "epochs" not in overrides:
                raise TypeError("fit needs epochs= (or config=TrainConfig(epochs=...))")
            return cls(**overrides)
        if not isinstance(config, cls):
            raise TypeError(f"config must be a TrainConfig or None, got {type(config).__name__}")
        return dataclasses.replace(config, **overrides)

    def resume_settings(self) -> dict[str, Any]:
        """The fields a resumed run must agree on (not device, progress, checkpoint_dir ...)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["resume"]}

    def asdict(self) -> dict[str, Any]:
        """``dataclasses.asdict(self)``: plain values, as stored in checkpoints."""
        return dataclasses.asdict(self)


def check_milestones(milestones: Sequence[Any], epochs: int) -> str:
    """ "fractions" or "epochs": what the milestones are, or ValueError if they are neither."""
    values = list(milestones)
    fractions = values and all(isinstance(m, float) and 0 < m < 1 for m in values)
    ints = values and all(
        isinstance(m, int) and not isinstance(m, bool) and 0 < m < epochs for m in values
    )
    if not (fractions or ints):
        raise ValueError(
            "milestones must be all fractions of training (floats in (0, 1), e.g. (0.5, 0.75)) "
            f"or all epochs (ints in [1, epochs={epochs})), got {tuple(values)!r}"
        )
    if values != sorted(set(values)):
        raise ValueError(f"milestones must be increasing, got {tuple(values)!r}")
    return "fractions" if fractions else "epochs"
