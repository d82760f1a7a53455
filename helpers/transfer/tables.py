"""Tables of a transfer experiment: top-1 agreement, accuracy per seed, paired differences.

    top1_agreement({"source": plain, "+ CBAM": cbam}, test_loader)  # does a change keep it?
    table = seed_table({("ResNet, scratch", 0): 0.61, ("ResNet, scratch", 1): 0.58, ...})
    paired_differences(table, {"pretraining": ("ResNet, pretrained", "ResNet, scratch")})

A difference between two cells is paired by seed: runs with the same seed saw the same
images in the same order, so part of the noise of a single run cancels in their difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from helpers.train import predict

__all__ = ["paired_differences", "seed_table", "top1_agreement"]

SEED_PREFIX = "seed "


@torch.no_grad()
def top1_agreement(
    models: Mapping[str, nn.Module],
    loader: Iterable,
    *,
    device: torch.device | str | None = None,
) -> pd.DataFrame:
    """Accuracy of each model, and how often its top-1 class is the first model's.

    ``loader`` yields (x (B, C, H, W) float, y (B,) int64) batches, the same ones in the same
    order on every pass (no shuffling); every model maps x to logits (B, num_classes). Models
    run in eval mode, on ``device`` if given (they are moved there). Returns a DataFrame
    indexed by model name with columns ``accuracy`` and ``same top-1 as <first name>``, both
    in [0, 1] (the first model agrees with itself: 1.0).
    """
    if not models:
        raise ValueError("models is empty: give at least one {name: model}")
    preds, labels = {}, None
    for name, model in models.items():
        if device is not None:
            model.to(device)
        preds[name], y = predict(model, loader)
        if labels is not None and not torch.equal(y, labels):
            raise ValueError(
                "the loader gave other labels on another pass: it must yield the same images "
                "in the same order every time (shuffle=False)"
            )
        labels = y
    first = next(iter(preds))
    agree = f"same top-1 as {first}"
    rows = {
        name: {
            "accuracy": (p == labels).float().mean().item(),
            agree: (p == preds[first]).float().mean().item(),
        }
        for name, p in preds.items()
    }
    return pd.DataFrame(rows).T


def seed_table(
    accs: Mapping[tuple[str, int], float], *, order: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per cell, one column per seed, then the mean and the spread over the seeds.

    ``accs`` maps (cell name, seed) to a number, e.g. a test accuracy. Columns ``seed 0``,
    ``seed 1``, ... (seeds in increasing order), ``mean`` and ``spread (max - min)``. Rows come
    in ``order`` (every cell exactly once), by default in the order first seen in ``accs``.
    Every cell needs a number for every seed: a missing run is a ValueError naming it.
    """
    if not accs:
        raise ValueError("accs is empty: give {(cell, seed): accuracy}")
    bad = [k for k in accs if not (isinstance(k, tuple) and len(k) == 2)]
    if bad:
        raise ValueError(f"accs keys must be (cell, seed) pairs, got {bad[:3]}")
    cells = list(dict.fromkeys(cell for cell, _ in accs))
    seeds = sorted({seed for _, seed in accs})
    missing = [(c, s) for c in cells for s in seeds if (c, s) not in accs]
    if missing:
        raise ValueError(f"every cell needs every seed {seeds}; missing runs: {missing}")
    if order is None:
        order = cells
    elif sorted(order) != sorted(cells):
        raise ValueError(
            f"order must name every cell exactly once; cells: {cells}, order: {list(order)}"
        )
    table = pd.Series(dict(accs), dtype=float).unstack()
    table.columns = [f"{SEED_PREFIX}{s}" for s in table.columns]
    table["mean"], table["spread (max - min)"] = (
        table.mean(axis=1),
        table.max(axis=1) - table.min(axis=1),
    )
    return table.loc[list(order)]


def paired_differences(table: pd.DataFrame, pairs: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    """Seed-by-seed differences between rows of a :func:`seed_table`: row a minus row b.

    ``pairs`` maps a name to the two cells (a, b) it compares. Returns one row per name with
    the table's ``seed ...`` columns (a - b, seed by seed) and their ``mean``, in the table's
    units.
    """
    seeds = [c for c in table.columns if str(c).startswith(SEED_PREFIX)]
    if not seeds:
        raise ValueError(
            f"table has no '{SEED_PREFIX}...' columns (make it with seed_table); "
            f"it has {list(table.columns)}"
        )
    if not pairs:
        raise ValueError("pairs is empty: give {name: (cell a, cell b)}")
    bad = [name for name, pair in pairs.items() if not (isinstance(pair, tuple) and len(pair) == 2)]
    if bad:
        raise ValueError(f"pairs {bad} are not (cell a, cell b) tuples")
    unknown = sorted({cell for pair in pairs.values() for cell in pair} - set(table.index))
    if unknown:
        raise ValueError(f"pairs name cells that are not rows of the table: {unknown}")
    diffs = pd.DataFrame(
        {name: table.loc[a, seeds] - table.loc[b, seeds] for name, (a, b) in pairs.items()}
    ).T
    diffs["mean"] = diffs[seeds].mean(axis=1)
    return diffs
