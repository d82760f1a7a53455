"""Progress of an epoch: the tqdm.auto bar and the meter of running loss and accuracy.

The meter keeps per-step values on the device and reads them back every ``SYNC_EVERY``
steps, so a GPU is not stalled by one host synchronisation per batch; that read-back is also
where a NaN or infinite loss is caught.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

__all__ = [
    "SYNC_EVERY",
    "Meter",
    "NonFiniteInputError",
    "NonFiniteLossError",
    "RunState",
    "bars_disabled",
    "epoch_bar",
]

SYNC_EVERY = 10


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (the message names the epoch and step)."""


class NonFiniteInputError(NonFiniteLossError, ValueError):
    """The loss became NaN or infinite because a training batch held NaN or inf inputs."""


def bars_disabled() -> bool:
    """Whether ``TQDM_DISABLE`` (tqdm's own variable) asks for no progress bars.

    tqdm honours it in a terminal but ``tqdm.notebook`` ignores it, so it is read here. The
    committed notebooks are executed with it set, because a saved notebook shows every widget
    bar frozen at 0 %.
    """
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")


def epoch_bar(enabled: bool, epoch: int, epochs: int, steps: int, done: int) -> tqdm:
    """A bar over the epoch's steps (``done`` of them already trained); silent if disabled."""
    return tqdm(
        total=steps,
        initial=done,
        desc=f"epoch {epoch + 1}/{epochs}",
        unit="batch",
        disable=not enabled or bars_disabled(),
    )


@dataclass
class RunState:
    """Where training stands: completed epochs, steps into the current one, running sums."""

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0
    time: float = 0.0
    lr: float = float("nan")

    def partial(self) -> dict[str, Any]:
        """The running sums of the epoch in progress (for a mid-epoch checkpoint)."""
        return {
            "loss_sum": self.loss_sum,
            "correct": self.correct,
            "count": self.count,
            "time": self.time,
            "lr": self.lr,
        }


class Meter:
    """Per-step losses and hit counts, kept on the device until the next host sync."""

    def __init__(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.done = done  # steps already folded into the run state
        self.losses: list[torch.Tensor] = []
        self.correct: list[torch.Tensor] = []
        self.sizes: list[int] = []
        self.bad_inputs: list[torch.Tensor] = []

    def add(
        self, loss: torch.Tensor, correct: torch.Tensor, size: int, x: torch.Tensor | None = None
    ) -> None:
        """One step's loss and hit count; ``x``, its inputs, is checked for NaN/inf with the
        loss (on the device, no sync), so that a broken batch is not blamed on the lr."""
        self.losses.append(loss)
        self.correct.append(correct)
        self.sizes.append(size)
        if x is not None:
            self.bad_inputs.append(~torch.isfinite(x).all())

    def flush(self, state: RunState, bar: tqdm) -> None:
        """Read the pending values back, stop on NaN/inf, fold them into the running sums."""
        if not self.losses:
            return
        losses = torch.stack(self.losses).float().cpu()
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            i = int(bad[0])
            if self.bad_inputs:
                broken = torch.stack(self.bad_inputs[: i + 1]).cpu().nonzero()
                if len(broken):
                    j = int(broken[0])
                    raise NonFiniteInputError(
                        f"the training batch at epoch {self.epoch + 1}/{self.epochs}, step "
                        f"{self.done + j + 1}/{self.steps} holds NaN or infinite inputs, so "
                        f"the loss became {float(losses[i])}: the data is broken, not the "
                        "learning rate. Check the images and their normalisation (a std of "
                        "0, a division by 0, float images with NaN pixels)."
                    )
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
        self.bad_inputs.clear()
        if not bar.disable:
            bar.set_postfix(
                loss=f"{state.loss_sum / state.count:.4f}",
                acc=f"{state.correct / state.count:.4f}",
            )
