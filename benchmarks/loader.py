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
import statistics

import torch
from common import load_average
from torch.utils.data import DataLoader
from torchvision import transforms as T

import helpers.data as hd
from helpers.measurement import PILImages, epoch_rate
from helpers.settings import describe_device


def benchmark_data(n: int) -> tuple[str, hd.ImageTensorSet, tuple, tuple]:
    """CIFAR-10's training images if on disk (no download), else the shapes set."""
    try:
        splits = hd.load("cifar10", download=False, val_size=0, train_size=n)
    except hd.DatasetUnavailableError:
        splits = hd.load("shapes", train_size=n, val_size=0, test_size=0)
    return splits.source, splits.train, splits.mean, splits.std


def measure(
    images: int = 10_000, repeats: int = 5, batch_size: int = 128, device: str = "cpu"
) -> tuple[str, int, dict[str, list[float]]]:
    """(data source, images per epoch, images/s of every timed epoch per loader).

    One warm-up epoch per loader, then ``repeats`` epochs alternating between the loaders.
    """
    dev = torch.device(device)
    source, data, mean, std = benchmark_data(images)
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
        PIL: DataLoader(pil_set, batch_size=batch_size, num_workers=2, shuffle=True),
        PERSISTENT: DataLoader(
            pil_set, batch_size=batch_size, num_workers=2, shuffle=True, persistent_workers=True
        ),
        DEVICE: hd.DeviceLoader.from_set(
            data, batch_size=batch_size, mean=mean, std=std, device=dev, shuffle=True, augment=True
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    for loader in loaders.values():  # warm-up: worker start, allocator, caches
        epoch_rate(loader, dev)
    for _ in range(repeats):
        for name, loader in loaders.items():
            rates[name].append(epoch_rate(loader, dev))
    return source, len(data), rates


PIL = "torchvision DataLoader (PIL, 2 workers)"
PERSISTENT = "  same, persistent_workers=True"
DEVICE = "helpers DeviceLoader"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="images per epoch")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per loader")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"device : {describe_device(torch.device(args.device))}")
    print(f"load   : {load_average()} (other processes share these cores)")
    source, n, rates = measure(args.images, args.repeats, args.batch_size, args.device)
    print(f"data   : {source}")
    medians = {name: statistics.median(r) for name, r in rates.items()}
    fast = medians[DEVICE]
    print(f"\n{n} images per epoch, batch {args.batch_size}, median of {args.repeats}:")
    for name, rate in medians.items():
        spread = f"(min {min(rates[name]):,.0f}, max {max(rates[name]):,.0f})"
        print(f"  {name:<42} {rate:>10,.0f} images/s {spread}")
    for name, rate in medians.items():
        if name != DEVICE:
            print(f"DeviceLoader / {name.strip()}: {fast / rate:.1f}x")
    print(f"load   : {load_average()}")


if __name__ == "__main__":
    main()
