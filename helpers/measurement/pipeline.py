"""Input pipelines compared: torchvision's PIL DataLoader against the course's DeviceLoader.

Notebook 08 and ``benchmarks/loader.py`` measure with these. Every comparison interleaves its
contenders (alternating order, median of repeats), so load from other processes slows all of
them alike: ratios hold on a busy machine, absolute numbers do not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from helpers.validate import check_int

__all__ = ["PILImages", "epoch_rate", "loader_rates", "pil_loader"]


class PILImages(Dataset):
    """An ImageTensorSet's images as PIL images, transformed one at a time (what torchvision's
    datasets do). images: (N, C, H, W) uint8, labels: (N,)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        hwc = images.permute(0, 2, 3, 1).numpy()
        if hwc.shape[-1] == 1:
            hwc = hwc[..., 0]
        self.images = [Image.fromarray(a) for a in hwc]
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), self.labels[i]


def pil_loader(image_set, mean, std, batch_size: int = 128, workers: int = 2) -> DataLoader:
    """The usual torchvision pipeline over ``image_set`` (an ImageTensorSet): RandomCrop(pad 4),
    RandomHorizontalFlip, ToTensor, Normalize, in a shuffling DataLoader with ``workers``."""
    size = image_set.images.shape[-1]
    transform = T.Compose(
        [T.RandomCrop(size, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
         T.Normalize(mean, std)]
    )  # fmt: skip
    dataset = PILImages(image_set.images, image_set.labels, transform)
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=True)


def epoch_rate(loader: Iterable, device: torch.device) -> float:
    """Images per second for one pass over ``loader``, batches moved to ``device``."""
    count = 0
    start = time.perf_counter()
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        count += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - start)


def loader_rates(
    loaders: Mapping[str, Iterable], device: torch.device, repeats: int = 3
) -> dict[str, float]:
    """Median images/s of each loader: one warm-up epoch each, then ``repeats`` epochs, the
    loaders alternating."""
    check_int("repeats", repeats, 1)
    for loader in loaders.values():
        epoch_rate(loader, device)
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    for _ in range(repeats):
        for name, loader in loaders.items():
            rates[name].append(epoch_rate(loader, device))
    return {name: statistics.median(r) for name, r in rates.items()}
