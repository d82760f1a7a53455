"""Resize every split of a :class:`DataSplits` (e.g. 32x32 -> 16x16 for a quick-mode run)."""

from __future__ import annotations

import dataclasses

from torchvision.transforms import v2

from helpers.data.core import DataSplits, ImageTensorSet
from helpers.validate import check_int

__all__ = ["resize_splits"]


def _resize_set(split: ImageTensorSet | None, size: int) -> ImageTensorSet | None:
    if split is None:
        return None
    # Antialiased: shrinking without it aliases fine strokes into noise.
    images = v2.functional.resize(split.images, [size, size], antialias=True)
    return ImageTensorSet(images, split.labels)


def resize_splits(splits: DataSplits, size: int) -> DataSplits:
    """The same images at ``size`` x ``size`` pixels, with the same labels and statistics.

    Works on in-memory splits (``ImageTensorSet``: uint8 images (N, C, H, W) ->
    (N, C, size, size)); the mean/std per channel are kept, since resizing barely moves them.
    ``source`` records the resize. Raises ValueError for a bad size and TypeError for splits
    that are not held in memory (ImageFolder data is resized by its transform instead).
    """
    if not isinstance(splits, DataSplits):
        raise TypeError(f"expected a helpers.data.DataSplits, got {type(splits).__name__}")
    size = check_int("size", size, 1)
    for name in ("train", "val", "test"):
        split = getattr(splits, name)
        if split is not None and not isinstance(split, ImageTensorSet):
            raise TypeError(
                f"resize_splits needs in-memory ImageTensorSet splits, but {name} is a "
                f"{type(split).__name__}; pass image_size= to the loader instead"
            )
    if splits.image_size == size:
        return splits
    return dataclasses.replace(
        splits,
        train=_resize_set(splits.train, size),
        val=_resize_set(splits.val, size),
        test=_resize_set(splits.test, size),
        image_size=size,
        source=f"{splits.source}, resized to {size}x{size}",
    )
