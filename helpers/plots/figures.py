"""Figures for the course: training curves, confusion matrices, image grids, reliability diagrams.

Every function returns the matplotlib ``Figure`` it draws. Figures are made through pyplot,
so Jupyter's inline backend shows them once the cell ends; end the call with ``;`` (or assign
the result) to avoid a second copy from the returned value. Seaborn styles the axes only
inside these functions (``sns.axes_style``), leaving the notebook's global style alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from helpers.images import to_display
from helpers.validate import check_int

_TITLES = {"loss": "Loss", "acc": "Accuracy", "top5": "Top-5 accuracy", "lr": "Learning rate"}


def _as_dataframe(history: Any, name: str) -> pd.DataFrame:
    if isinstance(history, pd.DataFrame):
        return history
    if hasattr(history, "to_dataframe"):
        return history.to_dataframe()
    raise TypeError(
        f"run {name!r}: expected a History (with .to_dataframe()) or a pandas DataFrame, "
        f"got {type(history).__name__}"
    )


def _runs(history: Any) -> dict[str, pd.DataFrame]:
    """Normalise the accepted inputs to {run name: DataFrame}."""
    if isinstance(history, Mapping):
        if not history:
            raise ValueError("plot_history got an empty dict of runs")
        return {str(name): _as_dataframe(h, str(name)) for name, h in history.items()}
    return {"": _as_dataframe(history, "history")}


def plot_history(
    history: Any,
    metrics: Sequence[str] = ("loss", "acc"),
    *,
    title: str | None = None,
) -> Figure:
    """Training curves: one panel per metric, train dashed and val solid, one colour per run.

    history: a ``helpers.train.History`` (anything with ``.to_dataframe()``), a DataFrame with
    columns ``epoch``, ``train_<metric>``, ``val_<metric>`` (or a bare ``<metric>`` such as
    ``lr``), or a dict ``{run name: history or DataFrame}`` to compare runs.
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    runs = _runs(history)
    colours = sns.color_palette("tab10" if len(runs) <= 10 else "husl", n_colors=len(runs))
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            1, len(metrics), figsize=(4.6 * len(metrics), 3.4), squeeze=False, layout="constrained"
        )
    for ax, metric in zip(axes[0], metrics, strict=True):
        drawn = 0
        for colour, (run, df) in zip(colours, runs.items(), strict=True):
            x = df["epoch"] if "epoch" in df else np.arange(1, len(df) + 1)
            for column, style, part in (
                (f"train_{metric}", "--", "train"),
                (f"val_{metric}", "-", "val"),
                (metric, "-", ""),
            ):
                if column not in df or df[column].isna().all():
                    continue
                label = " ".join(p for p in (run, part) if p) or metric
                ax.plot(x, df[column], style, color=colour, label=label, marker=".")
                drawn += 1
        if drawn == 0:
            columns = sorted({c for df in runs.values() for c in df.columns})
            raise ValueError(
                f"metric {metric!r}: no column train_{metric}, val_{metric} or {metric} with "
                f"values; columns are {columns}"
            )
        ax.set_title(_TITLES.get(metric, metric))
        ax.set_xlabel("epoch")
        if metric == "lr":
            ax.set_yscale("log")
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_confusion_matrix(
    cm: torch.Tensor | np.ndarray,
    classes: Sequence[str],
    *,
    normalize: bool = True,
    title: str | None = None,
    annotate: bool | None = None,
) -> Figure:
    """A seaborn heatmap of a confusion matrix: rows are true classes, columns predictions.

    cm: (K, K) counts, e.g. from ``helpers.train.confusion_matrix``. ``normalize`` divides
    each row by its total (so the diagonal is per-class recall; empty rows stay 0).
    ``annotate`` writes the numbers in the cells (default: when K <= 20).
    """
    matrix = cm.detach().cpu().numpy() if isinstance(cm, torch.Tensor) else np.asarray(cm)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"cm must be a square (K, K) matrix, got shape {matrix.shape}")
    if len(classes) != matrix.shape[0]:
        raise ValueError(f"cm is {matrix.shape[0]}x{matrix.shape[0]} but {len(classes)} classes")
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    k = len(classes)
    annotate = k <= 20 if annotate is None else annotate
    size = min(4 + 0.45 * k, 16)
    fig, ax = plt.subplots(figsize=(size + 1.2, size), layout="constrained")
    sns.heatmap(
        matrix,
        ax=ax,
        annot=annotate,
        fmt=".2f" if normalize else "d",
        cmap="Blues",
        vmin=0,
        vmax=1 if normalize else None,
        square=True,
        xticklabels=list(classes),
        yticklabels=list(classes),
        cbar_kws={"label": "fraction of true class" if normalize else "count"},
        annot_kws={"fontsize": "small"},
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(
        title or ("Confusion matrix (row-normalised)" if normalize else "Confusion matrix")
    )
    return fig


def show_images(
    images: Any,
    labels: torch.Tensor | Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    boxes: torch.Tensor | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    ncols: int = 8,
    *,
    preds: torch.Tensor | Sequence[int] | None = None,
    title: str | None = None,
) -> Figure:
    """A grid of images with optional class titles and object boxes.

    images: (N, C, H, W) uint8, float in [0, 1], or normalised float with ``mean``/``std`` to
    undo it; an ``ImageTensorSet`` brings its own labels and boxes. boxes: (N, 4) ``(x_min,
    y_min, x_max, y_max)`` inclusive pixel indices. ``preds`` adds the predicted class to each
    title, green when right and red when wrong.
    """
    if hasattr(images, "images") and hasattr(images, "labels"):  # an ImageTensorSet
        labels = images.labels if labels is None else labels
        boxes = getattr(images, "boxes", None) if boxes is None else boxes
        images = images.images
    pixels = to_display(images, mean, std)
    n = len(pixels)
    if n == 0:
        raise ValueError("no images to show")
    for name, value in (("labels", labels), ("preds", preds), ("boxes", boxes)):
        if value is not None and len(value) != n:
            raise ValueError(f"{n} images but {len(value)} {name}")
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")

    def name_of(label: int) -> str:
        return classes[label] if classes is not None else str(label)

    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(1.5 * ncols, 1.6 * nrows + 0.3), squeeze=False, layout="constrained"
    )
    grey = pixels.shape[-1] == 1
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        image = pixels[i, :, :, 0] if grey else pixels[i]
        ax.imshow(image, cmap="gray" if grey else None, vmin=0, vmax=1, interpolation="nearest")
        if labels is not None:
            text, colour = name_of(int(labels[i])), "black"
            if preds is not None:
                right = int(preds[i]) == int(labels[i])
                text = f"{name_of(int(preds[i]))}" + ("" if right else f" ({text})")
                colour = "green" if right else "red"
            ax.set_title(text, fontsize="small", color=colour)
        elif preds is not None:
            ax.set_title(name_of(int(preds[i])), fontsize="small")
        if boxes is not None:
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            # Inclusive pixel indices: the box's outer edge is half a pixel beyond them.
            ax.add_patch(
                Rectangle(
                    (x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, ec="lime", lw=1.5
                )
            )
    if title:
        fig.suptitle(title)
    return fig


def plot_seed_spread(
    final: pd.DataFrame, column: str = "val_err", *, ylabel: str | None = None
) -> Figure:
    """One dot per seed and a bar for the mean, per model: is a gap bigger than the spread?

    final: a table with columns ``model``, ``seed`` and ``column`` (e.g.
    ``helpers.train.train.run_experiment(...).final``); models keep their first-seen order.
    """
    missing = [c for c in ("model", "seed", column) if c not in final.columns]
    if missing:
        raise ValueError(f"final has no column(s) {missing}; it has {list(final.columns)}")
    order = list(dict.fromkeys(final["model"]))
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(order), 3.4), layout="constrained")
        means = final.groupby("model", sort=False)[column].mean().loc[order]
        ax.bar(range(len(order)), means.to_numpy(), color="#dddddd", edgecolor="#555555")
        for i, model in enumerate(order):
            rows = final[final["model"] == model]
            ax.scatter(np.full(len(rows), i), rows[column], color="black", zorder=3, s=18)
            for _, row in rows.iterrows():
                ax.annotate(f"seed {row['seed']}", (i, row[column]), xytext=(6, 0),
                            textcoords="offset points", fontsize=7, va="center")  # fmt: skip
        ax.set_xticks(range(len(order)), order)
        ax.set_ylabel(ylabel or column)
    return fig


def lr_curve(
    make_schedule: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler],
    epochs: int = 120,
    lr: float = 0.1,
) -> list[float]:
    """The learning rate of every epoch under a torch scheduler, stepped once per epoch.

    ``make_schedule(optimizer)`` builds the scheduler (e.g. ``CosineAnnealingLR(optimizer,
    T_max=epochs)``) on an SGD optimizer of one dummy parameter with base rate ``lr``; the
    result holds the rate used in epochs 0, 1, ..., epochs - 1, read before each step.
    """
    epochs = check_int("epochs", epochs, 1)
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not 0 < lr < float("inf"):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    schedule = make_schedule(opt)
    if not isinstance(schedule, torch.optim.lr_scheduler.LRScheduler):
        raise ValueError(
            f"make_schedule must return a torch.optim.lr_scheduler scheduler, "
            f"got {type(schedule).__name__}"
        )
    if schedule.optimizer is not opt:
        raise ValueError("make_schedule must build its scheduler on the optimizer it is given")
    values = []
    for _ in range(epochs):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return values


def plot_lr_curves(curves: Mapping[str, Sequence[float]], *, title: str | None = None) -> Figure:
    """Learning-rate curves side by side, on a linear and on a log scale, one line per schedule.

    curves: ``{label: rate per epoch}``, e.g. from :func:`lr_curve`; epochs count from 0.
    The log scale shows the small rates at the end of training that the linear one flattens.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty dict {label: learning rate per epoch}")
    for label, values in curves.items():
        rates = np.asarray(values, dtype=float)
        if rates.ndim != 1 or len(rates) == 0:
            raise ValueError(f"curve {label!r} must be a non-empty sequence of learning rates")
        if not np.isfinite(rates).all() or (rates < 0).any():
            raise ValueError(f"curve {label!r} has negative or non-finite learning rates")
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained")
    for label, values in curves.items():
        axes[0].plot(values, label=label)
        axes[1].semilogy(values, label=label)
    axes[0].set(xlabel="epoch", ylabel="learning rate", title="linear scale")
    axes[1].set(xlabel="epoch", title="log scale")
    axes[0].legend()
    if title:
        fig.suptitle(title)
    return fig


def reliability_diagram(
    table: pd.DataFrame, ax: plt.Axes | None = None, title: str = "", color: str = "tab:blue"
) -> plt.Axes:
    """Draw a :func:`reliability_table`: accuracy per bin as bars, the diagonal as the ideal.

    Bars below the diagonal: overconfident (confidence above accuracy); above: underconfident.
    Each bar is labelled with the number of images in its bin.
    """
    missing = {"low", "high", "count", "accuracy", "confidence"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks column(s) {sorted(missing)}: pass a reliability_table")
    ax = ax if ax is not None else plt.subplots(figsize=(4, 4))[1]
    width = table["high"] - table["low"]
    full = table["count"] > 0
    ax.bar(
        table["low"][full], table["accuracy"][full], width=width[full], align="edge",
        color=color, edgecolor="black", alpha=0.7, label="accuracy in bin",
    )  # fmt: skip
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    ax.scatter(table["confidence"][full], table["accuracy"][full], s=12, c="black", zorder=3)
    for _, row in table[full].iterrows():
        y = min(row["accuracy"] + 0.02, 0.95)
        ax.text((row["low"] + row["high"]) / 2, y, str(int(row["count"])), ha="center", fontsize=7)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top softmax probability)")
    ax.set(ylabel="accuracy", title=title)
    ax.legend(loc="upper left", fontsize=8)
    return ax
