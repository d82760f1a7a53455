"""scikit-learn's handwritten digits: a real offline image set, no download needed.

It ships with scikit-learn, so quick mode and the tests always have real images to train on.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits as sk_load_digits

from helpers.data.core import (
    DataSplits,
    ImageTensorSet,
    channel_stats,
    describe_sizes,
    hold_out,
    resolve_size,
    stratified_split,
)
from helpers.validate import check_int

__all__ = ["load_digits"]


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
    if in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 or 3, got {in_chans!r}")
    check_int("image_size", image_size, 8)
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
