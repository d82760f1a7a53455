"""Where training time goes: input pipelines, step throughput, a profiler summary, GPU results.

Notebook 08 and ``benchmarks/`` measure with these. Every comparison interleaves its
contenders (alternating order, median of repeats), so load from other processes slows all of
them alike: ratios hold on a busy machine, absolute numbers do not.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from helpers.timing import sgd_step
from helpers.validate import check_int

__all__ = [
    "PILImages",
    "epoch_rate",
    "gpu_results",
    "loader_rates",
    "pil_loader",
    "profile_categories",
]


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
    from torchvision import transforms as T

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


# Profiler op names -> what they are. The first matching pattern wins.
_CATEGORIES = (
    ("convolution", ("conv", "mkldnn_convolution")),
    ("batch norm", ("batch_norm",)),
    ("optimizer", ("sgd", "_foreach", "optimizer")),
    ("elementwise (ReLU, add)", ("relu", "threshold", "add", "mul")),
    ("loss and pooling", ("cross_entropy", "nll", "log_softmax", "mean", "avg_pool", "addmm")),
)


def _category(op_name: str) -> str:
    name = op_name.lower()
    for category, patterns in _CATEGORIES:
        if any(p in name for p in patterns):
            return category
    return "other"


def profile_categories(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 3
) -> tuple[dict[str, float], str]:
    """Profile ``steps`` SGD training steps of ``model`` on x: (B, C, H, W), y: (B,).

    Returns (share of self CPU time per category: convolution, batch norm, optimizer,
    elementwise, loss and pooling, other; summing to 1) and torch.profiler's table of the
    eight operators with the most self time. One untimed step first (allocator warm-up).
    """
    from torch.profiler import ProfilerActivity, profile

    check_int("steps", steps, 1)
    step = sgd_step(model, x, y)

    model.train()
    step()
    activities = [ProfilerActivity.CPU]
    if x.is_cuda:
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    totals: dict[str, float] = {}
    for event in events:
        if event.key.startswith("ProfilerStep") or event.key.startswith("autograd::engine"):
            continue
        category = _category(event.key)
        totals[category] = totals.get(category, 0.0) + event.self_cpu_time_total
    total = sum(totals.values()) or 1.0
    shares = {k: v / total for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
    table = events.table(sort_by="self_cpu_time_total", row_limit=8, max_name_column_width=40)
    return shares, table


def gpu_results(folder: str | Path) -> list[dict]:
    """The JSON records of ``benchmarks/gpu_run.sh`` in ``folder`` (results/gpu), name order;
    an empty list when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [
        {"file": p.name, **json.loads(p.read_text())}
        for p in sorted(folder.glob("*.json"))
        if not p.name.endswith(".history.json")
    ]
