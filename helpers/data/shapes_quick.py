"""An easier shapes set for quick mode: fewer classes and less clutter, learnt in seconds.

    data = helpers.data.load_quick_shapes()   # 4 classes, 1 blob + 1 line, 2,500/200 images

Notebook 07 trains a small ResNet on a CPU in seconds; on the full six-class set with three
blobs and three lines of clutter it would learn too little for its maps to mean anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..validate import check_int
from .core import DataSplits
from .offline import load_shapes
from .shapes import SHAPE_CLASSES

__all__ = ["QUICK_SHAPE_CLASSES", "load_quick_shapes"]

QUICK_SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def load_quick_shapes(
    *,
    train_size: int = 2500,
    test_size: int = 200,
    seed: int = 0,
    classes: Sequence[str] = QUICK_SHAPE_CLASSES,
    n_blobs: int = 1,
    n_lines: int = 1,
    image_size: int = 32,
) -> DataSplits:
    """The easy shapes set of quick mode as DataSplits: train and test, no validation split.

    :func:`helpers.data.load_shapes` with less clutter and no validation split:
    ``train.images`` is (train_size, 3, S, S) uint8 and ``test.images`` (test_size, 3, S, S),
    with labels (N,) int64 and object boxes (N, 4) ``(x_min, y_min, x_max, y_max)``; mean and
    std are the training images' channel statistics.
    """
    for name, value, minimum in (
        ("train_size", train_size, 1),
        ("test_size", test_size, 1),
        ("n_blobs", n_blobs, 0),
        ("n_lines", n_lines, 0),
    ):
        check_int(name, value, minimum)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    classes = list(classes)
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if unknown or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(
            f"classes must be 2+ distinct names from {SHAPE_CLASSES}, got {tuple(classes)}"
        )
    splits = load_shapes(
        train_size=train_size,
        val_size=0,
        test_size=test_size,
        seed=seed,
        image_size=image_size,
        classes=classes,
        n_blobs=n_blobs,
        n_lines=n_lines,
    )
    return dataclasses.replace(
        splits,
        source=f"shapes, quick mode: {len(classes)} classes, {_plural(n_blobs, 'blob')} and "
        f"{_plural(n_lines, 'line')} of clutter (3 and 3 in the full set), "
        f"{image_size}x{image_size}, {train_size:,}/{test_size:,} train/test (seed {seed})",
    )
