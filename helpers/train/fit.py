"""``fit``: check the inputs, build the optimiser, schedule and Trainer from a TrainConfig, run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from helpers import settings
from helpers.data.core import identity as data_identity
from helpers.train import distributed, optim
from helpers.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from helpers.train.config import TrainConfig
from helpers.train.history import History
from helpers.train.loop import Trainer
from helpers.train.precision import (
    check_amp,
    choose_precision,
    grad_scaler,
    precision_label,
    resolve_device,
)

__all__ = ["fit"]


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    config: TrainConfig | None = None,
    *,
    optimizer: str | torch.optim.Optimizer | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    identity: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> History:
    """Train ``model`` in place on ``train_loader``; returns a :class:`History`.

    Batches are x: (B, C, H, W) float and y: (B,) int64 class indices. The settings are a
    :class:`TrainConfig` (``config``) and/or its fields as keywords, which override it::

        fit(model, train_loader, val_loader, epochs=30, lr=0.1, schedule="cosine")
        fit(model, train_loader, val_loader, TrainConfig(epochs=30), lr=0.05)

    See ``TrainConfig`` for every setting (the defaults are He et al.'s CIFAR recipe). An
    unknown keyword is a TypeError listing the valid ones. Besides the settings:

        optimizer: ``"sgd"`` or ``"adamw"`` (the config field), or an optimizer you built
            over the model's parameters; then ``lr`` and ``weight_decay`` are its own (e.g.
            per parameter group) and must not be given.
        on_epoch_end: called with a copy of each epoch's record (on every DDP process).
        identity: what else identifies the run, as plain values (e.g. the CLI's model name
            and options, data set, split seed and sizes); a resume must agree on it.

    With ``checkpoint_dir``, ``checkpoint.pt`` is written after every epoch, on Ctrl-C or
    SIGTERM, and when reading a batch fails; if it exists, training resumes from it. The run
    must be the same, otherwise CheckpointError lists what differs: the settings that shape
    the trajectory, the model (every module's type and options, every tensor's shape), the
    data (DeviceLoader, or DataLoader over image files or tensors: a fingerprint of the
    images, the order seed, the batch size, the augmentation) and ``identity``. The folder
    is locked while training: a second run on it is a CheckpointError naming the first.

    Raises NonFiniteLossError when the loss becomes NaN or infinite; ValueError or
    TypeError for bad settings and, before any update, when the first batch does not fit
    the model (wrong input shape, labels outside [0, num_classes)).
    """
    optimizer_object = None
    if isinstance(optimizer, torch.optim.Optimizer):
        optimizer_object = optimizer
    elif optimizer is not None:
        overrides["optimizer"] = optimizer
    cfg = TrainConfig.build(config, overrides)
    if optimizer_object is not None:
        for name in ("lr", "weight_decay"):
            if getattr(cfg, name) is not None:
                raise ValueError(
                    f"{name}={getattr(cfg, name)!r} given together with an optimizer object: "
                    "set it in the optimizer (per parameter group) instead"
                )
    dev = resolve_device(cfg.device)
    if dev.type == "cuda" and dev.index is None:  # DDP and fork_rng need the index
        dev = torch.device("cuda", torch.cuda.current_device())
    _check_loader(train_loader, "train_loader")
    if val_loader is not None:
        _check_loader(val_loader, "val_loader")
    if cfg.amp == "auto":
        cfg = _resolve_auto_precision(model, train_loader, cfg, dev)
    check_amp(cfg.amp, dev)
    steps_per_epoch = _num_batches(train_loader)
    world_size, rank = distributed.world()
    if world_size > 1:
        distributed.check_sharded(train_loader, world_size)
    if cfg.sync_bn and (world_size == 1 or dev.type != "cuda"):
        raise ValueError("sync_bn=True needs DistributedDataParallel on CUDA (torchrun + NCCL)")

    if cfg.seed is not None:
        settings.seed_everything(cfg.seed)
    model.to(dev)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = optimizer_object or optim.make_optimizer(model, cfg)
    trainer = Trainer(
        model=model,
        optimizer=opt,
        scheduler=optim.scheduler_for(opt, cfg, steps_per_epoch),
        scaler=grad_scaler(cfg.amp),
        config=cfg,
        device=dev,
        steps_per_epoch=steps_per_epoch,
        run_info={
            **_run_info(model, optimizer_object, steps_per_epoch),
            # Only a checkpoint needs it (fingerprinting a big folder's file list takes time).
            "data": {"train": data_identity(train_loader), "val": data_identity(val_loader)}
            if cfg.checkpoint_dir is not None
            else {},
            "identity": _plain("identity", dict(identity or {})),
        },
        world_size=world_size,
        rank=rank,
        ema=optim.ema_model(model, cfg.ema_decay),
    )
    try:
        if cfg.checkpoint_dir is not None:
            trainer.use_checkpoint_dir(Path(cfg.checkpoint_dir))
        if world_size > 1:
            trainer.model, trainer.net = distributed.wrap_ddp(model, dev, cfg.sync_bn)
        if cfg.compile:  # the state dict, EMA and evaluation keep using the uncompiled model
            trainer.net = torch.compile(trainer.net)
        return trainer.run(train_loader, val_loader, on_epoch_end)
    finally:
        trainer.release()


def _resolve_auto_precision(
    model: nn.Module, train_loader: Iterable, cfg: TrainConfig, dev: torch.device
) -> TrainConfig:
    """``amp="auto"``: the checkpoint's precision when resuming (so the resumed run is the same
    run), else what :func:`choose_precision` measures for this model and input size."""
    saved = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None
    if saved is not None and saved.is_file():
        stored = load_checkpoint(saved)["config"]
        amp, channels_last, why = stored["amp"], stored["channels_last"], f"as in {saved}"
    else:
        choice = choose_precision(model, _input_size(train_loader), dev)
        amp, channels_last, why = choice.amp, choice.channels_last, choice.reason
    distributed.printer(distributed.world()[1] == 0)(
        f"amp='auto': training in {precision_label(amp, channels_last)} ({why})"
    )
    return dataclasses.replace(cfg, amp=amp, channels_last=channels_last)


def _input_size(loader: Iterable) -> tuple[int, ...]:
    """(C, H, W) of the loader's images: a DeviceLoader's tensor, else its first batch."""
    images = getattr(loader, "images", None)
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        return tuple(images.shape[1:])
    x, _ = next(iter(loader))
    return tuple(x.shape[1:])


def _run_info(
    model: nn.Module, optimizer: torch.optim.Optimizer | None, steps_per_epoch: int
) -> dict[str, Any]:
    """What a checkpoint must agree on besides the config: the model class, the epoch length
    and, for an optimizer object, its type and per-group settings."""
    info: dict[str, Any] = {"model": type(model).__name__, "steps_per_epoch": steps_per_epoch}
    # Each module's type and own options (activation, dropout, kernel sizes ...): models
    # with the same tensor shapes can still differ, e.g. resnet20 with act=silu or plain20.
    info["modules"] = {
        name or "(model)": f"{type(m).__name__}({m.extra_repr()})"
        for name, m in model.named_modules()
    }
    if optimizer is not None:
        info["optimizer_object"] = {
            "type": type(optimizer).__name__,
            "param_groups": [optim.hyperparameters(g) for g in optimizer.param_groups],
        }
    return info


def _plain(name: str, value: Any) -> Any:
    """``value`` if it holds only what a weights_only checkpoint can store, else TypeError."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(name, v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(f"{name}[{k!r}]", v) for k, v in value.items()}
    raise TypeError(
        f"{name} must hold plain values (str, int, float, bool, None, lists, dicts with str "
        f"keys) to go into the checkpoint, got {type(value).__name__}: {value!r}"
    )


def _check_loader(loader: Any, name: str) -> None:
    if not isinstance(loader, Iterable):
        raise TypeError(
            f"{name} must be an iterable of (x, y) batches, got {type(loader).__name__}"
        )
    if isinstance(loader, Iterator):
        raise TypeError(
            f"{name} is a one-shot iterator ({type(loader).__name__}); fit iterates it once per "
            "epoch, so pass a DeviceLoader, a DataLoader or a list of batches"
        )


def _num_batches(loader: Any) -> int:
    try:
        n = len(loader)
    except TypeError as err:
        raise TypeError(
            f"train_loader must have a length (batches per epoch) for the schedule and the "
            f"progress bar; {type(loader).__name__} has none"
        ) from err
    if n == 0:
        raise ValueError("train_loader has no batches (fewer samples than one batch?)")
    return n
