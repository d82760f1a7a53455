"""Images per second: helpers' DeviceLoader against the usual torchvision input pipeline.

Both loaders deliver the same thing in the same run, on the same images: shuffled batches of
128 with a 4-pixel-padded random 32x32 crop, a random horizontal flip and per-channel
normalisation, as float32 tensors on the training device.

- baseline (the usual pipeline): a Dataset of PIL images with torchvision transforms
  RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize, and
  DataLoader(batch_size=128, num_workers=2, shuffle=True); also measured with
  persistent_workers=True, which saves re-starting the workers every epoch;
- DeviceLoader: the split as one uint8 tensor on the device, augmented per batch.

Data: torchvision CIFAR-10 from the data root if it is there, else the offline shapes set.
Each loader gets a warm-up epoch, then the runs alternate between loaders (so CPU load from
other processes hits all of them alike) and the median of ``--repeats`` epochs is reported.

    python benchmarks/loader.py [--images 10000] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterable

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

import helpers.data as hd
from helpers.config import describe_device


class PILImages(Dataset):
    """The images as PIL images, transformed one at a time (what torchvision datasets do)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        hwc = images.permute(0, 2, 3, 1).numpy()
        self.images = [Image.fromarray(a) for a in hwc]
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), self.labels[i]


def benchmark_data(n: int) -> tuple[str, hd.ImageTensorSet, tuple, tuple]:
    """CIFAR-10's training images if on disk (no download), else the shapes set."""
    try:
        splits = hd.load("cifar10", download=False, val_size=0, train_size=n)
    except hd.DatasetUnavailableError:
        splits = hd.load("shapes", train_size=n, val_size=0, test_size=0)
    return splits.source, splits.train, splits.mean, splits.std


def epoch_rate(loader: Iterable, device: torch.device) -> float:
    """Images per second for one pass over ``loader``, batches moved to ``device``."""
    count = 0
    start = time.perf_counter()
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        count += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - start)


def _load_average() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return (
        "load average "
        + ", ".join(f"{v:.1f}" for v in os.getloadavg())
        + f" on {os.cpu_count()} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="images per epoch")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per loader")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)

    source, data, mean, std = benchmark_data(args.images)
    print(f"data   : {source}")
    print(f"device : {describe_device(device)}")
    print(f"load   : {_load_average()} (other processes share these cores)")

    transform = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )
    pil_set = PILImages(data.images, data.labels, transform)
    loaders = {
        "torchvision DataLoader (PIL, 2 workers)": DataLoader(
            pil_set, batch_size=args.batch_size, num_workers=2, shuffle=True
        ),
        "  same, persistent_workers=True": DataLoader(
            pil_set,
            batch_size=args.batch_size,
            num_workers=2,
            shuffle=True,
            persistent_workers=True,
        ),
        "helpers DeviceLoader": hd.DeviceLoader.from_set(
            data,
            batch_size=args.batch_size,
            mean=mean,
            std=std,
            device=device,
            shuffle=True,
            augment=True,
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    for loader in loaders.values():  # warm-up: worker start, allocator, caches
        epoch_rate(loader, device)
    for _ in range(args.repeats):
        for name, loader in loaders.items():
            rates[name].append(epoch_rate(loader, device))

    medians = {name: statistics.median(r) for name, r in rates.items()}
    fast = medians["helpers DeviceLoader"]
    print(f"\n{len(data)} images per epoch, batch {args.batch_size}, median of {args.repeats}:")
    for name, rate in medians.items():
        spread = f"(min {min(rates[name]):,.0f}, max {max(rates[name]):,.0f})"
        print(f"  {name:<42} {rate:>10,.0f} images/s {spread}")
    for name, rate in medians.items():
        if name != "helpers DeviceLoader":
            print(f"DeviceLoader / {name.strip()}: {fast / rate:.1f}x")
    print(f"load   : {_load_average()}")


if __name__ == "__main__":
    main()
