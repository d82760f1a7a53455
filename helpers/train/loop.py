"""The epoch loop: train an epoch, validate, record it, checkpoint, repeat.

:func:`helpers.train.fit` builds a :class:`Trainer` from a TrainConfig; everything here is
about running it: one optimisation step, the epoch around it (with resuming mid-epoch and
Ctrl-C), and the end of an epoch (validation on rank 0, the record, the checkpoint).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler

from helpers.train import checkpoint as ckpt_io
from helpers.train import distributed
from helpers.train.config import TrainConfig
from helpers.train.evaluation import batches, check_labels, check_outputs, evaluate
from helpers.train.history import History, epoch_record, record_postfix
from helpers.train.interrupt import GracefulInterrupt
from helpers.train.optim import EMA
from helpers.train.precision import autocast
from helpers.train.progress import SYNC_EVERY, Meter, RunState, epoch_bar

__all__ = ["Trainer"]


@dataclass
class Trainer:
    """The pieces of one fit() call and the epoch loop over them."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler | None
    config: TrainConfig
    device: torch.device
    steps_per_epoch: int
    run_info: dict[str, Any]  # facts of the run a checkpoint must agree on (beyond the config)
    world_size: int = 1
    rank: int = 0
    ema: EMA | None = None
    net: nn.Module = field(init=False)  # what runs forward: the model, or its DDP wrapper

    def __post_init__(self) -> None:
        self.net = self.model
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=self.config.label_smoothing)
        self.is_main = self.rank == 0
        self.state = RunState()
        self.history = History()
        self.checkpoint_path: Path | None = None
        self.resume_from: dict[str, Any] | None = None
        self.lock: ckpt_io.DirLock | None = None
        self.interrupt = GracefulInterrupt()
        self.first_batch_checked = False
        self.labels_checked = False  # all of the training loader's labels, at once
        self.num_classes = 0
        self.bar = epoch_bar(False, 0, 1, 1, 0)

    def run(
        self,
        train_loader: Iterable,
        val_loader: Iterable | None,
        on_epoch_end: Callable[[dict[str, Any]], None] | None,
    ) -> History:
        """Train the remaining epochs; returns the history (with any resumed epochs)."""
        epochs = self.config.epochs
        if self.state.epoch >= epochs:
            distributed.printer(self.is_main)(
                f"all {epochs} epochs were done already: nothing to train"
            )
            return self.finish()
        with self.interrupt:
            for epoch in range(self.state.epoch, epochs):
                self.train_epoch(epoch, train_loader)
                record = self.end_epoch(epoch, val_loader)
                if on_epoch_end is not None:
                    on_epoch_end(dict(record))
                if self.interrupt.requested:
                    raise self.interrupt.stop(f"the end of epoch {epoch + 1}", self._saved())
        return self.finish()

    def finish(self) -> History:
        """The model takes the averaged weights, if any (what validation measured)."""
        if self.ema is not None:
            self.model.load_state_dict(self.ema.module.state_dict())
        return self.history

    def train_epoch(self, epoch: int, train_loader: Iterable) -> None:
        """One pass over the loader (the rest of it, when resuming mid-epoch)."""
        state, cfg = self.state, self.config
        skip = self._replay_to(epoch, train_loader)
        start = time.perf_counter()
        self.net.train()
        meter = Meter(epoch, cfg.epochs, self.steps_per_epoch, done=skip)
        enabled = cfg.progress and self.is_main
        self.bar = epoch_bar(enabled, epoch, cfg.epochs, self.steps_per_epoch, skip)
        stream = batches(self.iterator, self.device, cfg.channels_last)
        while True:
            try:
                x, y = next(stream)
            except StopIteration:
                break
            except Exception as err:  # reading the data failed (a corrupt image ...)
                raise self._data_error(err, epoch, meter, start) from err
            if not self.first_batch_checked:
                self.check_first_batch(x, y, train_loader)
            elif not self.labels_checked:  # an out-of-range label would be torch's IndexError
                check_labels(y, self.num_classes, f"epoch {epoch + 1}, step {state.step + 1}")
            state.lr = self.optimizer.param_groups[0]["lr"]
            loss, correct = self.step(x, y)
            meter.add(loss, correct, len(y), x)
            state.step += 1
            self.bar.update(1)
            if state.step % SYNC_EVERY == 0:
                meter.flush(state, self.bar)
            if self.interrupt.requested and state.step < self.steps_per_epoch:
                meter.flush(state, self.bar)
                state.time += time.perf_counter() - start
                self.save(rng_epoch_start=self.rng_epoch_start)
                self.bar.close()
                raise self.interrupt.stop(f"epoch {epoch + 1}, step {state.step}", self._saved())
        meter.flush(state, self.bar)
        state.time += time.perf_counter() - start
        if state.step != self.steps_per_epoch:
            raise RuntimeError(
                f"train_loader yielded {state.step} batches in epoch {epoch + 1}, but "
                f"len(train_loader) is {self.steps_per_epoch}"
            )

    def _data_error(self, err: Exception, epoch: int, meter: Meter, start: float) -> Exception:
        """The loader failed between two steps: save a checkpoint there (as Ctrl-C does) and
        return the error as one line, with where training stopped and how to resume."""
        state = self.state
        saved = ""
        if self.checkpoint_path is not None and state.step > 0:
            meter.flush(state, self.bar)
            state.time += time.perf_counter() - start
            self.save(rng_epoch_start=self.rng_epoch_start)
            saved = f"; checkpoint saved to {self.checkpoint_path}: run again to resume"
        self.bar.close()
        # A DataLoader worker's error arrives as "Caught X in DataLoader worker process 0.
        # Original Traceback ...": its last line is the original message.
        message = str(err)
        if "Original Traceback" in message:
            last = message.strip().splitlines()[-1]
            message = last.split(": ", 1)[1] if ": " in last else last
        message = f"{message} (training stopped at epoch {epoch + 1}, step {state.step}{saved})"
        try:
            return type(err)(message)
        except Exception:  # an exception type with other constructor arguments
            return RuntimeError(f"{type(err).__name__}: {message}")

    def _replay_to(self, epoch: int, train_loader: Iterable) -> int:
        """Start the epoch's iterator; when resuming, restore the random streams and skip the
        batches trained before the interruption. Returns how many were skipped."""
        skip = self.state.step  # > 0 only when resuming in the middle of this epoch
        ckpt, self.resume_from = self.resume_from, None
        if ckpt is not None:
            # The random streams as they were before this epoch's iterator was made, so the
            # loader replays the same batches in the same order.
            ckpt_io.set_rng_state(ckpt["rng_epoch_start"] if skip else ckpt["rng"])
        self.rng_epoch_start = ckpt_io.get_rng_state()
        distributed.set_epoch(train_loader, epoch)
        self.iterator = iter(train_loader)
        for _ in range(skip):
            next(self.iterator)
        if skip:
            ckpt_io.set_rng_state(ckpt["rng"])
        return skip

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step; returns the loss and the number of correct predictions."""
        clip = self.config.grad_clip
        with autocast(self.device, self.config.amp):
            logits = self.net(x)
            loss = self.loss_fn(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if clip is not None:
                self.scaler.unscale_(self.optimizer)  # clip the true gradients
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        correct = (logits.detach().argmax(dim=1) == y).sum()
        return loss.detach(), correct

    def check_first_batch(
        self, x: torch.Tensor, y: torch.Tensor, train_loader: Iterable | None = None
    ) -> None:
        """Fail before the first update when the data does not fit the model.

        The model runs once in eval mode without gradients, so neither the weights nor the
        BatchNorm statistics change, and no random numbers are drawn. The labels of the
        later batches are checked as they come, or all at once here when the loader holds
        them as a tensor (``train_loader.labels``, e.g. a DeviceLoader: no sync per step).
        """
        if not x.is_floating_point():
            raise TypeError(
                f"inputs x must be float tensors, got {x.dtype} (normalise uint8 images first, "
                "e.g. with helpers.data.DeviceLoader)"
            )
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), autocast(self.device, self.config.amp):
                logits = self.model(x)
        except (RuntimeError, ValueError) as err:
            raise ValueError(
                f"the model cannot process the first training batch, x of shape "
                f"{tuple(x.shape)}: {err}"
            ) from err
        finally:
            self.model.train(was_training)
        check_outputs(logits, x, y, "the first training batch")
        self.num_classes = logits.shape[1]
        labels = getattr(train_loader, "labels", None)
        if isinstance(labels, torch.Tensor) and labels.dim() == 1:
            check_labels(labels, self.num_classes, "the training loader's labels")
            self.labels_checked = True
        self.first_batch_checked = True

    def end_epoch(self, epoch: int, val_loader: Iterable | None) -> dict[str, Any]:
        """Validate, record the epoch, write the checkpoint."""
        start = time.perf_counter()
        state = self.state
        sums = [state.loss_sum, state.correct, state.count]
        if self.world_size > 1:
            sums = distributed.all_reduce_sums(sums, self.device)
        loss_sum, correct, count = sums
        val_start = time.perf_counter()
        val = self.validate(val_loader) if val_loader is not None else None
        val_seconds = time.perf_counter() - val_start
        elapsed = state.time + time.perf_counter() - start
        self.history.timing.append(
            {"epoch": epoch + 1, "train_seconds": state.time, "val_seconds": val_seconds}
        )
        record = epoch_record(epoch + 1, loss_sum / count, correct / count, val, state.lr, elapsed)
        self.history.records.append(record)
        if not self.bar.disable:
            self.bar.set_postfix(record_postfix(record), refresh=True)
        self.bar.close()
        self.state = RunState(epoch=epoch + 1)
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
                    self.model if self.ema is None else self.ema.module,
                    val_loader,
                    device=self.device,
                    amp=self.config.amp,
                    channels_last=self.config.channels_last,
                    tta=self.config.tta,
                )
        if self.world_size > 1:
            val = distributed.broadcast_from_main(val, self.device)
        return val

    # ---- checkpoints

    def use_checkpoint_dir(self, folder: Path) -> None:
        """Save checkpoints in ``folder``, resuming from the one there if any.

        Rank 0 locks the folder for the run (call :meth:`release` at the end) and removes
        the temporary files of a save that a kill interrupted.
        """
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"checkpoint_dir {str(folder)!r} is not a directory")
        if self.is_main:
            ckpt_io.prepare_dir(folder)
            self.lock = ckpt_io.DirLock(folder).acquire()
            for tmp in ckpt_io.remove_stale_temporaries(folder):
                print(f"removed {tmp}: a checkpoint being written when a run was killed")
        self.checkpoint_path = folder / ckpt_io.CHECKPOINT_NAME
        if not self.checkpoint_path.exists():
            return
        ckpt = ckpt_io.load_checkpoint(self.checkpoint_path)
        expected = {**self.config.resume_settings(), **self.run_info}
        ckpt_io.check_compatible(ckpt, expected, self.model, self.checkpoint_path)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.state = RunState(epoch=ckpt["epoch"], step=ckpt["step"], **ckpt["partial"])
        self.history = History([dict(r) for r in ckpt["history"]])
        self.resume_from = ckpt
        where = f", step {self.state.step}" if self.state.step else ""
        distributed.printer(self.is_main)(
            f"resuming from {self.checkpoint_path} (epoch {self.state.epoch}{where})"
        )

    def release(self) -> None:
        """Let go of the checkpoint folder's lock (if this run holds it)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def save(self, rng_epoch_start: dict[str, Any] | None) -> None:
        """Write the checkpoint (rank 0, when there is a checkpoint_dir)."""
        if self.checkpoint_path is None or not self.is_main:
            return
        payload = {
            "format": ckpt_io.CHECKPOINT_FORMAT,
            "config": self.config.asdict(),
            "run": self.run_info,
            "model_signature": ckpt_io.model_signature(self.model),
            "epoch": self.state.epoch,
            "step": self.state.step,
            "partial": self.state.partial(),
            "history": self.history.records,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "rng": ckpt_io.get_rng_state(),
            "rng_epoch_start": rng_epoch_start,
        }
        ckpt_io.save_checkpoint(payload, self.checkpoint_path)

    def _saved(self) -> str:
        return f" (checkpoint saved to {self.checkpoint_path})" if self.checkpoint_path else ""
