"""``fit``: the training loop (optimizer, per-iteration schedule, AMP, DDP, checkpoints)."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.optim import lr_scheduler

from helpers import config
from helpers.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    check_compatible,
    get_rng_state,
    load_checkpoint,
    model_signature,
    save_checkpoint,
    set_rng_state,
)
from helpers.train.evaluation import (
    autocast,
    batches,
    check_amp,
    check_outputs,
    evaluate,
    resolve_device,
)
from helpers.train.history import History

__all__ = ["OPTIMIZERS", "SCHEDULES", "NonFiniteLossError", "fit"]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("step", "cosine", "onecycle", None)

# Linear warm-up starts at 1 % of the base learning rate (Goyal et al. 2017 ramp up from a
# small value; He et al. 2016 trained ResNet-110 at 10 % for its first 400 iterations).
WARMUP_START_FACTOR = 0.01
# Losses are read back from the device every SYNC_EVERY steps, not after every step, so a
# GPU is not stalled by one host synchronisation per batch.
SYNC_EVERY = 10


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (the message names the epoch and step)."""


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    epochs: int,
    optimizer: str | torch.optim.Optimizer = "sgd",
    lr: float | None = None,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float | None = None,
    decay_norm_and_bias: bool = False,
    schedule: str | None = "step",
    milestones: Sequence[float] | Sequence[int] = (0.5, 0.75),
    gamma: float = 0.1,
    warmup_epochs: float = 0.0,
    label_smoothing: float = 0.0,
    amp: str | None = None,
    channels_last: bool = False,
    grad_clip: float | None = None,
    sync_bn: bool = False,
    device: torch.device | str | None = None,
    seed: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs on ``train_loader``; returns a :class:`History`.

    The model is trained in place, on ``device``. Batches are x: (B, C, H, W) float and
    y: (B,) int64 class indices. The defaults are He et al.'s CIFAR recipe.

    Optimisation:
        optimizer: ``"sgd"`` (with ``momentum``, ``nesterov``) or ``"adamw"``; or an
            optimizer you built over the model's parameters (then ``lr`` and
            ``weight_decay`` are its own, e.g. per parameter group).
        lr: None means 0.1 for SGD (He et al.) and 1e-3 for AdamW.
        weight_decay: None means 1e-4 for SGD (He et al.) and 0.01 for AdamW (torch's default).
        decay_norm_and_bias: decay 1-d parameters (BatchNorm scales and shifts, biases) too.
            He et al. 2016 decayed everything; the default (False) follows He et al. 2019
            ("Bag of Tricks"), who found that decaying them does not help.
        schedule: the learning rate, stepped every iteration: ``"step"`` (multiplied by
            ``gamma`` at each milestone; ``milestones`` are fractions of training, floats in
            (0, 1), or epochs, ints), ``"cosine"`` (annealed to zero), ``"onecycle"`` (torch's
            OneCycleLR peaking at ``lr``; it cycles momentum too) or None (constant).
        warmup_epochs: linear warm-up from 1 % of ``lr`` over this many epochs (fractions
            allowed) before "step", "cosine" or None.
        label_smoothing: passed to ``nn.CrossEntropyLoss``.
        grad_clip: clip the global L2 norm of the gradients to this value.

    Speed:
        amp: mixed precision with ``torch.autocast``: ``"fp16"`` (CUDA only, with a
            ``torch.amp.GradScaler``), ``"bf16"`` (CUDA or CPU) or None.
        channels_last: NHWC memory layout (faster convolutions on tensor-core GPUs).
        sync_bn: under DistributedDataParallel, synchronise BatchNorm statistics across
            processes (SyncBatchNorm; CUDA only).

    Book-keeping:
        device: where to train; ``helpers.config.device()`` when None.
        seed: if given, ``helpers.config.seed_everything(seed)`` first. It fixes the data
            order, augmentation and dropout; the weights were drawn when the model was built.
        checkpoint_dir: write ``checkpoint.pt`` there after every epoch and on interrupt; if
            it exists, resume from it (the model and the arguments above must match, except
            device, progress and on_epoch_end; otherwise CheckpointError).
        progress: tqdm progress bars, one per epoch, with the running loss and accuracy.
        on_epoch_end: called with a copy of each epoch's record (on every DDP process).

    Raises NonFiniteLossError when the loss becomes NaN or infinite; ValueError or
    TypeError for bad arguments and, before any update, when the first batch does not fit
    the model (wrong input shape, labels outside [0, num_classes)).
    """
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:  # DDP and fork_rng need the index
        dev = torch.device("cuda", torch.cuda.current_device())
    settings = _check_fit_args(
        epochs=epochs,
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        schedule=schedule,
        gamma=gamma,
        warmup_epochs=warmup_epochs,
        label_smoothing=label_smoothing,
        grad_clip=grad_clip,
        seed=seed,
    )
    amp = check_amp(amp, dev)
    _check_loader(train_loader, "train_loader")
    if val_loader is not None:
        _check_loader(val_loader, "val_loader")
    steps_per_epoch = _num_batches(train_loader)
    world_size, rank = _distributed()
    if world_size > 1:
        _check_sharded(train_loader, world_size)
    if sync_bn and (world_size == 1 or dev.type != "cuda"):
        raise ValueError("sync_bn=True needs DistributedDataParallel on CUDA (torchrun + NCCL)")

    if seed is not None:
        config.seed_everything(seed)
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = _make_optimizer(model, optimizer, settings, decay_norm_and_bias)
    # Everything that shapes the trajectory: a checkpoint resumes only a run that agrees on all.
    run_config = {
        "model": type(model).__name__,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
        "param_groups": [_hyperparameters(group) for group in opt.param_groups],
        "decay_norm_and_bias": decay_norm_and_bias,
        "schedule": schedule,
        "milestones": list(milestones) if schedule == "step" else None,
        "gamma": gamma if schedule == "step" else None,
        "warmup_epochs": warmup_epochs,
        "label_smoothing": label_smoothing,
        "amp": amp,
        "grad_clip": grad_clip,
        "seed": seed,
    }
    sched = _make_scheduler(
        opt,
        schedule,
        total_steps=epochs * steps_per_epoch,
        milestone_steps=_milestone_steps(schedule, milestones, epochs, steps_per_epoch),
        gamma=gamma,
        warmup_steps=round(warmup_epochs * steps_per_epoch),
    )
    trainer = _Trainer(
        model=model,
        optimizer=opt,
        scheduler=sched,
        scaler=torch.amp.GradScaler("cuda") if amp == "fp16" else None,
        loss_fn=nn.CrossEntropyLoss(label_smoothing=label_smoothing),
        device=dev,
        amp=amp,
        channels_last=channels_last,
        grad_clip=grad_clip,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        run_config=run_config,
        rank=rank,
        world_size=world_size,
        progress=progress,
    )
    if checkpoint_dir is not None:
        trainer.use_checkpoint_dir(Path(checkpoint_dir))
    if world_size > 1:
        trainer.wrap_ddp(sync_bn)
    return trainer.run(train_loader, val_loader, on_epoch_end)


@dataclass
class _RunState:
    """Where training stands: completed epochs, steps into the current one, running sums."""

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0
    time: float = 0.0
    lr: float = math.nan

    def partial(self) -> dict[str, Any]:
        """The running sums of the epoch in progress (for a mid-epoch checkpoint)."""
        return {
            "loss_sum": self.loss_sum,
            "correct": self.correct,
            "count": self.count,
            "time": self.time,
            "lr": self.lr,
        }


@dataclass
class _Trainer:
    """The pieces of one fit() call and the epoch loop over them."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler | None
    loss_fn: nn.Module
    device: torch.device
    amp: str | None
    channels_last: bool
    grad_clip: float | None
    epochs: int
    steps_per_epoch: int
    run_config: dict[str, Any]
    rank: int
    world_size: int
    progress: bool

    def __post_init__(self) -> None:
        self.net: nn.Module = self.model  # the DDP wrapper under torch.distributed
        self.is_main = self.rank == 0
        self.state = _RunState()
        self.history = History()
        self.checkpoint_path: Path | None = None
        self.resume_from: dict[str, Any] | None = None
        self.interrupt = _GracefulInterrupt()
        self.first_batch_checked = False
        self.bar: Any = _NoBar()

    # ---- set-up

    def use_checkpoint_dir(self, folder: Path) -> None:
        """Save checkpoints in ``folder``, resuming from the one there if any."""
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"checkpoint_dir {str(folder)!r} is not a directory")
        if self.is_main:
            folder.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = folder / CHECKPOINT_NAME
        if not self.checkpoint_path.exists():
            return
        ckpt = load_checkpoint(self.checkpoint_path)
        check_compatible(ckpt, self.run_config, self.model, self.checkpoint_path)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.state = _RunState(epoch=ckpt["epoch"], step=ckpt["step"], **ckpt["partial"])
        self.history = History([dict(r) for r in ckpt["history"]])
        self.resume_from = ckpt
        if self.is_main:
            where = f", step {self.state.step}" if self.state.step else ""
            print(f"resuming from {self.checkpoint_path} (epoch {self.state.epoch}{where})")

    def wrap_ddp(self, sync_bn: bool) -> None:
        if sync_bn:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)

    # ---- the loop

    def run(
        self,
        train_loader: Iterable,
        val_loader: Iterable | None,
        on_epoch_end: Callable[[dict[str, Any]], None] | None,
    ) -> History:
        if self.state.epoch >= self.epochs:
            if self.is_main:
                print(f"all {self.epochs} epochs were done already: nothing to train")
            return self.history
        with self.interrupt:
            for epoch in range(self.state.epoch, self.epochs):
                self.train_epoch(epoch, train_loader)
                record = self.end_epoch(epoch, val_loader)
                if on_epoch_end is not None:
                    on_epoch_end(dict(record))
                if self.interrupt.requested:
                    raise KeyboardInterrupt(
                        f"training interrupted after epoch {epoch + 1}{self._saved()}"
                    )
        return self.history

    def train_epoch(self, epoch: int, train_loader: Iterable) -> None:
        state = self.state
        skip = state.step  # > 0 only when resuming in the middle of this epoch
        ckpt, self.resume_from = self.resume_from, None
        if ckpt is not None:
            # The random streams as they were before this epoch's iterator was made, so the
            # loader replays the same batches in the same order.
            set_rng_state(ckpt["rng_epoch_start"] if skip else ckpt["rng"])
        self.rng_epoch_start = get_rng_state()
        _set_epoch(train_loader, epoch)
        iterator = iter(train_loader)
        for _ in range(skip):  # the batches this epoch trained on before it was interrupted
            next(iterator)
        if skip:
            set_rng_state(ckpt["rng"])

        start = time.perf_counter()
        self.net.train()
        meter = _Meter(epoch, self.epochs, self.steps_per_epoch, done=skip)
        self.bar = _progress_bar(
            self.progress and self.is_main, epoch, self.epochs, self.steps_per_epoch, skip
        )
        for x, y in batches(iterator, self.device, self.channels_last):
            if not self.first_batch_checked:
                _check_first_batch(self.model, x, y, self.device, self.amp)
                self.first_batch_checked = True
            state.lr = self.optimizer.param_groups[0]["lr"]
            loss, correct = self.step(x, y)
            meter.add(loss, correct, len(y))
            state.step += 1
            self.bar.update(1)
            if state.step % SYNC_EVERY == 0:
                meter.flush(state, self.bar)
            if self.interrupt.requested and state.step < self.steps_per_epoch:
                meter.flush(state, self.bar)
                state.time += time.perf_counter() - start
                self.save(rng_epoch_start=self.rng_epoch_start)
                self.bar.close()
                raise KeyboardInterrupt(
                    f"training interrupted at epoch {epoch + 1}, step {state.step}{self._saved()}"
                )
        meter.flush(state, self.bar)
        state.time += time.perf_counter() - start
        if state.step != self.steps_per_epoch:
            raise RuntimeError(
                f"train_loader yielded {state.step} batches in epoch {epoch + 1}, but "
                f"len(train_loader) is {self.steps_per_epoch}"
            )

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step; returns the loss and the number of correct predictions."""
        with autocast(self.device, self.amp):
            logits = self.net(x)
            loss = self.loss_fn(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            # fp16 gradients would underflow: the scaler scales the loss up, unscales the
            # gradients before the update, and skips steps whose gradients overflowed.
            self.scaler.scale(loss).backward()
            if self.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        correct = (logits.detach().argmax(dim=1) == y).sum()
        return loss.detach(), correct

    def end_epoch(self, epoch: int, val_loader: Iterable | None) -> dict[str, Any]:
        """Validate, record the epoch, write the checkpoint."""
        start = time.perf_counter()
        state = self.state
        loss_sum, correct, count = state.loss_sum, state.correct, state.count
        if self.world_size > 1:
            totals = torch.tensor(
                [loss_sum, correct, count], dtype=torch.float64, device=self.device
            )
            dist.all_reduce(totals)
            loss_sum, correct, count = totals.tolist()
        val = self.validate(val_loader) if val_loader is not None else {}
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / count,
            "train_acc": correct / count,
            "val_loss": val.get("loss", math.nan),
            "val_acc": val.get("acc", math.nan),
            "lr": state.lr,
            "time": state.time + time.perf_counter() - start,
        }
        self.history.records.append(record)
        self.bar.set_postfix(_postfix(record), refresh=True)
        self.bar.close()
        self.state = _RunState(epoch=epoch + 1)
        self.save(rng_epoch_start=None)
        return record

    def validate(self, val_loader: Iterable) -> dict[str, float]:
        """Validation metrics, computed on rank 0 and shared with the other processes."""
        val: dict[str, float] = {}
        if self.is_main:
            # Validation must not draw from the training random streams, so that adding a
            # validation loader (or running it on rank 0 only) leaves training unchanged.
            cuda = [self.device.index] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=cuda):
                val = evaluate(
                    self.model,
                    val_loader,
                    device=self.device,
                    amp=self.amp,
                    channels_last=self.channels_last,
                )
        if self.world_size > 1:
            shared = [val]
            dist.broadcast_object_list(shared, src=0, device=self.device)
            val = shared[0]
        return val

    def save(self, rng_epoch_start: dict[str, Any] | None) -> None:
        if self.checkpoint_path is None or not self.is_main:
            return
        payload = {
            "format": CHECKPOINT_FORMAT,
            "config": self.run_config,
            "model_signature": model_signature(self.model),
            "epoch": self.state.epoch,
            "step": self.state.step,
            "partial": self.state.partial(),
            "history": self.history.records,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "rng": get_rng_state(),
            "rng_epoch_start": rng_epoch_start,
        }
        save_checkpoint(payload, self.checkpoint_path)

    def _saved(self) -> str:
        return f" (checkpoint saved to {self.checkpoint_path})" if self.checkpoint_path else ""


class _Meter:
    """Per-step losses and hit counts, kept on the device until the next host sync."""

    def __init__(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.done = done  # steps already folded into the run state
        self.losses: list[torch.Tensor] = []
        self.correct: list[torch.Tensor] = []
        self.sizes: list[int] = []

    def add(self, loss: torch.Tensor, correct: torch.Tensor, size: int) -> None:
        self.losses.append(loss)
        self.correct.append(correct)
        self.sizes.append(size)

    def flush(self, state: _RunState, bar: Any) -> None:
        """Read the pending values back, stop on NaN/inf, fold them into the running sums."""
        if not self.losses:
            return
        losses = torch.stack(self.losses).float().cpu()
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            i = int(bad[0])
            raise NonFiniteLossError(
                f"the training loss became {float(losses[i])} at epoch {self.epoch + 1}/"
                f"{self.epochs}, step {self.done + i + 1}/{self.steps}: training diverged. Try "
                "a lower learning rate, a warm-up (warmup_epochs=), gradient clipping "
                "(grad_clip=) or amp=None. The last checkpoint, if any, is from before this."
            )
        # Plain Python floats summed in step order: the sums do not depend on when we synced.
        for loss, size in zip(losses.tolist(), self.sizes, strict=True):
            state.loss_sum += loss * size
        state.correct += int(torch.stack(self.correct).sum())
        state.count += sum(self.sizes)
        self.done += len(self.sizes)
        self.losses.clear()
        self.correct.clear()
        self.sizes.clear()
        bar.set_postfix(
            {
                "loss": f"{state.loss_sum / state.count:.4f}",
                "acc": f"{state.correct / state.count:.4f}",
            }
        )


def _postfix(record: dict[str, Any]) -> dict[str, str]:
    post = {"loss": f"{record['train_loss']:.4f}", "acc": f"{record['train_acc']:.4f}"}
    if not math.isnan(record["val_acc"]):
        post["val_loss"] = f"{record['val_loss']:.4f}"
        post["val_acc"] = f"{record['val_acc']:.4f}"
    return post


def _progress_bar(enabled: bool, epoch: int, epochs: int, steps: int, done: int) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=steps, initial=done, desc=f"epoch {epoch + 1}/{epochs}", unit="batch")


class _NoBar:
    """Stands in for a tqdm bar when progress=False."""

    def update(self, n: int) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


class _GracefulInterrupt:
    """Turn the first Ctrl-C into a request that the loop honours between two steps.

    A KeyboardInterrupt raised in the middle of ``optimizer.step()`` could leave half of the
    parameters updated, and a checkpoint of that would not resume exactly. A second Ctrl-C
    interrupts at once. Only the main thread may install signal handlers; elsewhere (and
    when the handler cannot be installed) Ctrl-C keeps its usual meaning.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# ----------------------------------------------------------------------------------------------
# Arguments, optimizer and schedule


def _check_fit_args(**a: Any) -> dict[str, Any]:
    """Validate fit's arguments; returns the resolved lr, momentum, nesterov, weight_decay."""
    epochs = a["epochs"]
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    optimizer = a["optimizer"]
    if isinstance(optimizer, torch.optim.Optimizer):
        for name in ("lr", "weight_decay"):
            if a[name] is not None:
                raise ValueError(
                    f"{name}={a[name]!r} given together with an optimizer object: set it in "
                    "the optimizer (per parameter group) instead"
                )
    elif optimizer not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {OPTIMIZERS} or a torch.optim.Optimizer, got {optimizer!r}"
        )
    lr, wd = a["lr"], a["weight_decay"]
    if isinstance(optimizer, str):
        lr = (0.1 if optimizer == "sgd" else 1e-3) if lr is None else lr
        wd = (1e-4 if optimizer == "sgd" else 0.01) if wd is None else wd
        if not (_is_number(lr) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if not (_is_number(wd) and wd >= 0):
            raise ValueError(f"weight_decay must be a number >= 0, got {wd!r}")
    if not (_is_number(a["momentum"]) and 0 <= a["momentum"] < 1):
        raise ValueError(f"momentum must be in [0, 1), got {a['momentum']!r}")
    if a["nesterov"] and a["momentum"] == 0:
        raise ValueError("nesterov=True needs momentum > 0")
    if a["schedule"] not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {a['schedule']!r}")
    if not (_is_number(a["gamma"]) and 0 < a["gamma"] <= 1):
        raise ValueError(f"gamma must be in (0, 1], got {a['gamma']!r}")
    warm = a["warmup_epochs"]
    if not (_is_number(warm) and 0 <= warm < epochs):
        raise ValueError(f"warmup_epochs must be in [0, epochs={epochs}), got {warm!r}")
    if warm and a["schedule"] == "onecycle":
        raise ValueError("schedule='onecycle' has its own warm-up phase: leave warmup_epochs=0")
    if not (_is_number(a["label_smoothing"]) and 0 <= a["label_smoothing"] < 1):
        raise ValueError(f"label_smoothing must be in [0, 1), got {a['label_smoothing']!r}")
    clip = a["grad_clip"]
    if clip is not None and not (_is_number(clip) and clip > 0):
        raise ValueError(f"grad_clip must be a positive number or None, got {clip!r}")
    seed = a["seed"]
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    return {"lr": lr, "weight_decay": wd, "momentum": a["momentum"], "nesterov": a["nesterov"]}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _make_optimizer(
    model: nn.Module,
    optimizer: str | torch.optim.Optimizer,
    settings: dict[str, Any],
    decay_norm_and_bias: bool,
) -> torch.optim.Optimizer:
    """SGD or AdamW over the trainable parameters, 1-d ones without weight decay by default."""
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:  # frozen layers (transfer learning) stay out of the optimizer
            (decay if p.ndim > 1 or decay_norm_and_bias else no_decay).append(p)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    groups = [
        {"params": params, "weight_decay": wd}
        for params, wd in ((decay, settings["weight_decay"]), (no_decay, 0.0))
        if params
    ]
    if optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=settings["lr"], momentum=settings["momentum"], nesterov=settings["nesterov"]
        )
    return torch.optim.AdamW(groups, lr=settings["lr"])


def _hyperparameters(group: dict[str, Any]) -> dict[str, Any]:
    """A parameter group's settings (lr, momentum, weight_decay, ...) without its tensors."""
    plain = {}
    for key, value in group.items():
        value = list(value) if isinstance(value, tuple) else value
        if key != "params" and (value is None or isinstance(value, (int, float, bool, str, list))):
            plain[key] = value
    return plain


def _milestone_steps(
    schedule: str | None, milestones: Sequence[float] | Sequence[int], epochs: int, steps: int
) -> list[int]:
    """Milestones as iteration numbers, from fractions of training (floats) or epochs (ints)."""
    if schedule != "step":
        return []
    values = list(milestones)
    if values and all(isinstance(m, float) and 0 < m < 1 for m in values):
        # At least one step before the first drop. In a very short run two fractions may
        # round to the same iteration: MultiStepLR then applies both drops there.
        at = [max(1, round(m * epochs * steps)) for m in values]
    elif values and all(
        isinstance(m, int) and not isinstance(m, bool) and 0 < m < epochs for m in values
    ):
        at = [m * steps for m in values]
    else:
        raise ValueError(
            "milestones must be all fractions of training (floats in (0, 1), e.g. (0.5, 0.75)) "
            f"or all epochs (ints in [1, epochs={epochs})), got {tuple(values)!r}"
        )
    if values != sorted(set(values)):
        raise ValueError(f"milestones must be increasing, got {tuple(values)!r}")
    return at


def _make_scheduler(
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


def _distributed() -> tuple[int, int]:
    """(world size, rank) under torch.distributed, else (1, 0)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


# ----------------------------------------------------------------------------------------------
# Loaders and the first batch


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


def _sampler(loader: Any) -> Any:
    return getattr(loader, "sampler", None)


def _set_epoch(loader: Any, epoch: int) -> None:
    """Make the epoch's shuffle and augmentation a function of the epoch (for resuming)."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif hasattr(_sampler(loader), "set_epoch"):
        _sampler(loader).set_epoch(epoch)


def _check_sharded(loader: Any, world_size: int) -> None:
    replicas = getattr(loader, "num_replicas", None)
    if replicas is None:
        replicas = getattr(_sampler(loader), "num_replicas", None)
    if replicas is None:
        warnings.warn(
            f"training on {world_size} processes, but train_loader ({type(loader).__name__}) "
            "shows no sign of sharding, so every process may see the same batches: use "
            "DeviceLoader(num_replicas=, rank=) or a DistributedSampler",
            stacklevel=3,
        )
    elif replicas != world_size:
        raise ValueError(
            f"train_loader is sharded over {replicas} processes, but the world size is {world_size}"
        )


def _check_first_batch(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, dev: torch.device, amp: str | None
) -> None:
    """Fail before the first update when the data does not fit the model.

    The model runs once in eval mode without gradients, so neither the weights nor the
    BatchNorm statistics change, and no random numbers are drawn.
    """
    if not x.is_floating_point():
        raise TypeError(
            f"inputs x must be float tensors, got {x.dtype} (normalise uint8 images first, "
            "e.g. with helpers.data.DeviceLoader)"
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast(dev, amp):
            logits = model(x)
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"the model cannot process the first training batch, x of shape {tuple(x.shape)}: {err}"
        ) from err
    finally:
        model.train(was_training)
    check_outputs(logits, x, y, "the first training batch")
