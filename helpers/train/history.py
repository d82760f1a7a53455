"""The epoch record and ``History``, what :func:`helpers.train.fit` returns.

One record format everywhere: :func:`epoch_record` builds it, ``History.records`` holds it,
the checkpoint stores those records, the command line writes them to JSON, and
:func:`format_record` / :func:`record_postfix` show them (one line, a progress-bar postfix).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

__all__ = ["History", "epoch_record", "format_record", "record_postfix"]


@dataclass(repr=False)
class History:
    """Per-epoch training record: ``history.records`` is a list of dicts, one per epoch.

    Record keys: ``epoch`` (1-based), ``train_loss``, ``train_acc`` (running averages over the
    epoch, in training mode, with label smoothing if used), ``val_loss``, ``val_acc`` (NaN
    without a validation loader), ``lr`` (first parameter group, at the epoch's last step)
    and ``time`` (seconds for the epoch, training plus validation).

    ``timing`` splits that time, for the epochs trained by this call (not those restored
    from a checkpoint): one dict per epoch with ``epoch``, ``train_seconds`` (the steps, up to
    the host's read-back of the epoch's last losses, so GPU work is included) and
    ``val_seconds`` (validation, test-time augmentation included). Benchmarks report
    time-to-accuracy from ``train_seconds`` alone, as airbench and DAWNBench do.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    timing: list[dict[str, float]] = field(default_factory=list, compare=False)

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "time",
    )
    METRICS: ClassVar[tuple[str, ...]] = ("train_loss", "train_acc", "val_loss", "val_acc")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.records[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def to_dataframe(self) -> pd.DataFrame:
        """The records as a pandas DataFrame: one row per epoch, the columns of ``COLUMNS``.

        Training curves: ``helpers.plots.plot_history(history)`` (the trainer draws nothing).
        """
        return pd.DataFrame(self.records, columns=list(self.COLUMNS))

    def best(self, metric: str = "val_acc") -> dict[str, Any]:
        """The record with the best ``metric``: the highest accuracy or the lowest loss."""
        if metric not in self.METRICS:
            raise ValueError(f"metric must be one of {self.METRICS}, got {metric!r}")
        scored = [r for r in self.records if not math.isnan(r[metric])]
        if not scored:
            raise ValueError(f"no epoch has a {metric} value (was there a validation loader?)")
        pick = max if metric.endswith("acc") else min
        return pick(scored, key=lambda r: r[metric])

    def __repr__(self) -> str:
        if not self.records:
            return "History(0 epochs)"
        head = f"History({len(self)} epoch{'s' if len(self) > 1 else ''}"
        if not math.isnan(self.records[-1]["val_acc"]):
            best = self.best("val_acc")
            head += f", best val_acc {best['val_acc']:.4f} at epoch {best['epoch']}"
        lines = [head + ")", "epoch  train_loss  train_acc  val_loss  val_acc        lr    time"]
        # Long runs show their first and last five epochs.
        rows = self.records if len(self) <= 12 else [*self.records[:5], None, *self.records[-5:]]
        for r in rows:
            if r is None:
                lines.append("  ...")
                continue
            lines.append(
                f"{r['epoch']:5d}  {r['train_loss']:10.4f}  {r['train_acc']:9.4f}  "
                f"{r['val_loss']:8.4f}  {r['val_acc']:7.4f}  {r['lr']:8.2e}  {r['time']:5.1f}s"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.to_dataframe().to_html(index=False, float_format=lambda v: f"{v:.4g}")


def epoch_record(
    epoch: int,
    train_loss: float,
    train_acc: float,
    val: dict[str, float] | None,
    lr: float,
    time: float,
) -> dict[str, Any]:
    """One epoch's record (keys ``History.COLUMNS``); val_loss and val_acc are NaN without
    validation metrics ``val`` (``{"loss", "acc", ...}``)."""
    val = val or {}
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_acc": train_acc,
        "val_loss": val.get("loss", math.nan),
        "val_acc": val.get("acc", math.nan),
        "lr": lr,
        "time": time,
    }


def _has_val(record: dict[str, Any]) -> bool:
    return not math.isnan(record["val_acc"])


def format_record(record: dict[str, Any], epochs: int) -> str:
    """``epoch   3/30  train loss 0.6931 acc 0.5000  val loss ... acc ...  lr 1.00e-01  2.1s``;
    without validation metrics there are no val columns."""
    line = (
        f"epoch {record['epoch']:3d}/{epochs}  train loss {record['train_loss']:.4f} "
        f"acc {record['train_acc']:.4f}"
    )
    if _has_val(record):
        line += f"  val loss {record['val_loss']:.4f} acc {record['val_acc']:.4f}"
    return line + f"  lr {record['lr']:.2e}  {record['time']:.1f}s"


def record_postfix(record: dict[str, Any]) -> dict[str, str]:
    """The record's metrics for a tqdm postfix (val ones only when there are any)."""
    post = {"loss": f"{record['train_loss']:.4f}", "acc": f"{record['train_acc']:.4f}"}
    if _has_val(record):
        post["val_loss"] = f"{record['val_loss']:.4f}"
        post["val_acc"] = f"{record['val_acc']:.4f}"
    return post
