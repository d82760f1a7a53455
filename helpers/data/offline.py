"""Offline datasets, no download: scikit-learn's handwritten digits and the drawn shapes.

Both compute their mean/std from their own training split.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .core import (
    DataSplits,
    ImageTensorSet,
    channel_stats,
    describe_sizes,
    hold_out,
    resolve_size,
    stratified_split,
)
from .shapes import SHAPE_CLASSES, make_shapes


def load_digits(
    *,
    val_size: int | float = 0.1,
    test_size: int | float = 0.2,
    train_size: int | None = None,
    seed: int = 0,
    image_size: int = 32,
    in_chans: int = 3,
) -> DataSplits:
    """scikit-learn's 1,797 handwritten digits (8x8, 17 grey levels), offline.

    Upsampled (bilinear) to ``image_size`` and repeated to ``in_chans`` channels so the
    course's ResNets take them unchanged. Class-stratified splits; mean/std from train.
    No flips: a mirrored 2 or 7 is not a 2 or 7.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    if in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 or 3, got {in_chans!r}")
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")
    digits = sk_load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    if image_size != 8:
        x = torch.nn.functional.interpolate(
            x, size=image_size, mode="bilinear", align_corners=False
        )
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, in_chans, -1, -1).contiguous()
    full = ImageTensorSet(images, torch.tensor(digits.target, dtype=torch.int64))

    n_test = resolve_size(test_size, len(full), "test_size")
    rest, test_idx = stratified_split(full.labels, n_test, seed)
    train, val = hold_out(full.subset(rest), val_size, train_size, seed)
    test = full.subset(test_idx) if n_test else None
    mean, std = channel_stats(train.images)
    return DataSplits(
        train=train,
        val=val,
        test=test,
        classes=[str(d) for d in range(10)],
        num_classes=10,
        mean=mean,
        std=std,
        image_size=image_size,
        source=f"digits (scikit-learn, offline; 8x8 upsampled to {image_size}x{image_size}), "
        f"{describe_sizes(train, val, test)} train/val/test (seed {seed})",
        flip=False,
        name="digits",
    )


def load_shapes(
    *,
    train_size: int | None = None,
    val_size: int = 2000,
    test_size: int = 2000,
    seed: int = 0,
    image_size: int = 32,
    classes: Sequence[str] = SHAPE_CLASSES,
    n_blobs: int = 3,
    n_lines: int = 3,
) -> DataSplits:
    """The procedurally drawn shapes set (offline), with object boxes for Grad-CAM checks.

    Default sizes 10,000/2,000/2,000. Each split is drawn from its own seed derived from
    ``seed``, so changing one split's size never changes the images of another. ``n_blobs``
    and ``n_lines`` set the clutter per image (:func:`make_shapes`).
    """
    sizes = {"train": 10_000 if train_size is None else train_size, "val": val_size}
    sizes["test"] = test_size
    for split, size in sizes.items():
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise TypeError(
                f"shapes is drawn, not split: {split}_size must be an int >= 0, got {size!r}"
            )
    sets: dict[str, ImageTensorSet | None] = {}
    for k, (split, size) in enumerate(sizes.items()):
        sets[split] = (
            make_shapes(
                size,
                image_size=image_size,
                seed=seed * 3 + k,
                classes=classes,
                n_blobs=n_blobs,
                n_lines=n_lines,
            )
            if size
            else None
        )
    if sets["train"] is None:
        raise ValueError("train_size must be >= 1")
    mean, std = channel_stats(sets["train"].images)
    return DataSplits(
        train=sets["train"],
        val=sets["val"],
        test=sets["test"],
        classes=list(classes),
        num_classes=len(classes),
        mean=mean,
        std=std,
        image_size=image_size,
        source=f"shapes (procedurally generated, offline), {image_size}x{image_size}, "
        f"{describe_sizes(sets['train'], sets['val'], sets['test'])} train/val/test (seed {seed})",
        flip=True,
        name="shapes",
    )
