"""Data for transfer experiments: class subsets, k images per class, an ImageFolder on disk.

source = class_subset(digits, ["0", "1", "2", "3", "4"])   # labels renumbered 0..4
few = per_class(target.train, 5, seed=0)                   # 5 labelled images per class
write_image_folder("/tmp/my_images", shapes.train, shapes.classes, per_class=20)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from helpers.data import DataSplits, ImageTensorSet, channel_stats
from helpers.validate import check_int

__all__ = ["Resized", "class_subset", "per_class", "repeat_to", "write_image_folder"]


def _keep_classes(split: ImageTensorSet | None, old: list[int]) -> ImageTensorSet | None:
    if split is None:
        return None
    if not isinstance(split, ImageTensorSet):
        raise TypeError(f"class_subset needs ImageTensorSet splits, got {type(split).__name__}")
    keep = torch.isin(split.labels, torch.tensor(old))
    subset = split.subset(keep.nonzero().flatten())
    remap = torch.full((int(split.labels.max()) + 1,), -1, dtype=torch.int64)
    remap[torch.tensor(old)] = torch.arange(len(old))
    return ImageTensorSet(subset.images, remap[subset.labels], subset.boxes)


def class_subset(splits: DataSplits, classes: Sequence[str], *, name: str = "") -> DataSplits:
    """The images of ``classes`` only (by name), with labels renumbered 0..len(classes)-1.

    Mean and std are recomputed from the new training split; ``source`` says which classes.
    """
    unknown = [c for c in classes if c not in splits.classes]
    if unknown or len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(
            f"classes must be 2+ distinct names of {splits.classes}, got {list(classes)}"
        )
    old = [splits.classes.index(c) for c in classes]
    train = _keep_classes(splits.train, old)
    mean, std = channel_stats(train.images)
    return dataclasses.replace(
        splits,
        train=train,
        val=_keep_classes(splits.val, old),
        test=_keep_classes(splits.test, old),
        classes=list(classes),
        num_classes=len(classes),
        mean=mean,
        std=std,
        source=f"{splits.source}, classes {', '.join(classes)} only",
        name=name or splits.name,
        extra=dict(splits.extra),
    )


def per_class(split: ImageTensorSet, n: int | None, *, seed: int = 0) -> ImageTensorSet:
    """``n`` images of every class drawn at random (``seed``), or the whole split for None.

    Raises a ValueError if a class has fewer than ``n`` images.
    """
    if n is None:
        return split
    check_int("n", n, 1)
    rng = np.random.default_rng(seed)
    labels = split.labels.numpy()
    chosen = []
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        if len(where) < n:
            raise ValueError(f"class {label} has {len(where)} images, fewer than n={n}")
        chosen.append(rng.choice(where, size=n, replace=False))
    return split.subset(np.sort(np.concatenate(chosen)))


def repeat_to(split: ImageTensorSet, size: int) -> ImageTensorSet:
    """``split`` repeated (whole copies, in order) until it holds at least ``size`` images.

    A few labelled images then make one epoch of several batches, so a short fine-tuning run
    is a few epochs instead of dozens of tiny ones (each with its own validation pass). The
    random crop still differs from copy to copy.
    """
    check_int("size", size, 1)
    times = max(1, -(-size // len(split)))
    if times == 1:
        return split
    boxes = None if split.boxes is None else split.boxes.repeat(times, 1)
    return ImageTensorSet(split.images.repeat(times, 1, 1, 1), split.labels.repeat(times), boxes)


def write_image_folder(
    root: str | os.PathLike,
    images: ImageTensorSet,
    classes: Sequence[str],
    *,
    per_class: int | None = None,
) -> Path:
    """Write ``images`` as PNG files in ImageFolder layout, ``root/<class>/<index>.png``.

    Stands in for a folder of your own photos where the course must run offline. At most
    ``per_class`` images of each class (all when None). Returns ``root``.
    """
    root = Path(root)
    counts: dict[int, int] = {}
    for image, label in zip(images.images, images.labels.tolist(), strict=True):
        if per_class is not None and counts.get(label, 0) >= per_class:
            continue
        folder = root / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        index = counts.get(label, 0)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{index:04d}.png")
        counts[label] = index + 1
    return root


class Resized:
    """A loader whose images are resized (bilinear, antialiased) on the fly, batch by batch.

    Wraps any loader of ``(x (B, C, H, W), y)`` batches and yields ``(x (B, C, S, S), y)``:
    the "upsample the input" way of feeding small images to a network trained on large ones.
    ``len`` and ``set_epoch`` pass through.
    """

    def __init__(self, loader, size: int) -> None:
        self.loader, self.size = loader, check_int("size", size, 1)

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            yield F.interpolate(x, size=self.size, mode="bilinear", antialias=True), y
