"""The containers every data source returns, the dataset errors, and split/statistics helpers.

``ImageTensorSet`` holds a whole split of small images as one uint8 tensor (what
:class:`helpers.data.DeviceLoader` feeds from); ``DataSplits`` bundles train/val/test with the
class names and the normalisation statistics a model needs.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset


class DatasetUnavailableError(FileNotFoundError):
    """A real dataset is not on disk and could not be downloaded.

    The message names the missing files (expected paths) and how to get them.
    """


class DatasetCorruptError(DatasetUnavailableError):
    """A dataset file is on disk but unreadable (truncated download, wrong checksum...).

    A subclass of :class:`DatasetUnavailableError`, so quick mode falls back the same way.
    """


@dataclass(eq=False)
class ImageTensorSet(Dataset):
    """A split of small images as tensors: ``images`` (N, C, H, W) uint8, ``labels`` (N,) int64.

    ``boxes`` is (N, 4) float or None: one object box per image as ``(x_min, y_min, x_max,
    y_max)`` pixel indices, inclusive (the convention of ``torchvision.ops.masks_to_boxes``).
    As a torch ``Dataset``, ``set[i]`` is ``(image (C, H, W) uint8, label int)``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor | None = None

    def __post_init__(self) -> None:
        check_image_tensors(self.images, self.labels)
        if self.boxes is not None:
            if not isinstance(self.boxes, torch.Tensor) or not self.boxes.is_floating_point():
                raise TypeError(
                    f"boxes must be a float tensor or None, got {_describe(self.boxes)}"
                )
            if tuple(self.boxes.shape) != (len(self.labels), 4):
                raise ValueError(
                    f"boxes must have shape ({len(self.labels)}, 4), got {tuple(self.boxes.shape)}"
                )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    @property
    def image_size(self) -> int:
        """Height of the images (the sets here are square)."""
        return int(self.images.shape[-2])

    def subset(self, indices: Sequence[int] | torch.Tensor | np.ndarray) -> ImageTensorSet:
        """A new set holding the images at ``indices`` (copies, in the order given)."""
        index = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        boxes = None if self.boxes is None else self.boxes[index]
        return ImageTensorSet(self.images[index], self.labels[index], boxes)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        boxes = "" if self.boxes is None else ", with boxes"
        return f"ImageTensorSet({n} images, {c}x{h}x{w} uint8{boxes})"


@dataclass
class DataSplits:
    """A dataset ready for training: the three splits plus what a model and loader need to know.

    ``train``/``val``/``test`` are ImageTensorSets (small images) or torch Datasets (large
    images through transforms); ``val`` or ``test`` may be None when a source has none.
    ``mean``/``std`` are per-channel, in [0, 1] pixel units. ``flip`` says whether a
    horizontal flip keeps the label (not for digits or traffic signs).
    """

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    classes: list[str]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    source: str
    flip: bool = True
    name: str = ""
    extra: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.num_classes != len(self.classes):
            raise ValueError(
                f"num_classes={self.num_classes} but {len(self.classes)} class names were given"
            )
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean {self.mean} and std {self.std} differ in length")

    @property
    def in_chans(self) -> int:
        """Number of image channels (length of ``mean``)."""
        return len(self.mean)

    def summary(self) -> str:
        """One line per split with its size, for printing at the top of a notebook."""
        sizes = ", ".join(
            f"{name} {len(split) if split is not None else 0}"
            for name, split in (("train", self.train), ("val", self.val), ("test", self.test))
        )
        return (
            f"{self.source}\n{self.num_classes} classes, {self.in_chans}x{self.image_size}x"
            f"{self.image_size} images; {sizes}"
        )


@contextlib.contextmanager
def one_cpu_thread(device: torch.device | str = "cpu") -> Iterator[None]:
    """Run data preparation on one CPU thread, then give the model its threads back.

    Preparing images is memory-bound: a second thread gains little, and when the cores are
    shared with other busy processes, OpenMP threads waiting on each other made it 3-10x
    slower in our measurements on two cores. Work on a GPU is unaffected.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__}"


def check_image_tensors(images: object, labels: object) -> None:
    """Raise a clear error unless ``images`` is uint8 (N, C, H, W) and ``labels`` int64 (N,)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"images must be a torch.Tensor (N, C, H, W) uint8, got {_describe(images)}"
        )
    if images.dtype != torch.uint8:
        raise TypeError(
            f"images must be uint8 (N, C, H, W) with values 0-255, got {_describe(images)}; "
            "convert float images in [0, 1] with (x * 255).round().to(torch.uint8)"
        )
    if images.dim() != 4:
        raise ValueError(f"images must be 4-D (N, C, H, W), got shape {tuple(images.shape)}")
    if images.shape[1] not in (1, 3, 4) and images.shape[-1] in (1, 3, 4):
        raise ValueError(
            f"images look channels-last (N, H, W, C) with shape {tuple(images.shape)}; "
            "expected (N, C, H, W): use images.permute(0, 3, 1, 2)"
        )
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be an int64 torch.Tensor (N,), got {_describe(labels)}")
    if labels.dtype != torch.int64 or labels.dim() != 1:
        raise TypeError(f"labels must be an int64 tensor of shape (N,), got {_describe(labels)}")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels: they must match")
    if len(images) == 0:
        raise ValueError("the image set is empty (N = 0)")


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], ...]:
    """Per-channel mean and std of uint8 images (N, C, H, W), in [0, 1] units.

    Computed in float64 over chunks so 50k CIFAR-sized images need no extra gigabytes.
    Returns ``(mean, std)`` as tuples of C floats (std over all pixels of the split).
    """
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].to(torch.float64) / 255.0
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def resolve_size(size: int | float | None, n: int, what: str) -> int:
    """A split size given as a count (int) or a fraction of ``n`` (float in [0, 1)), as a count."""
    if size is None:
        return 0
    if isinstance(size, bool):
        raise TypeError(f"{what} must be an int count or a float fraction, got {size!r}")
    if isinstance(size, float):
        if not 0.0 <= size < 1.0:
            raise ValueError(f"{what} as a fraction must be in [0, 1), got {size!r}")
        return round(size * n)
    if isinstance(size, (int, np.integer)):
        if size < 0:
            raise ValueError(f"{what} must be >= 0, got {size!r}")
        return int(size)
    raise TypeError(f"{what} must be an int count or a float fraction, got {size!r}")


def stratified_split(
    labels: torch.Tensor | np.ndarray, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices 0..N-1 into (rest, held_out) with ``size`` held out, class-stratified.

    Deterministic for a given seed (scikit-learn's ``train_test_split``). Both index arrays
    come back sorted, so a split keeps the source's order. ``size=0`` holds out nothing.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if size == 0:
        return np.arange(n), np.arange(0)
    if size >= n:
        raise ValueError(f"cannot hold out {size} of {n} images: need size < {n}")
    counts = np.bincount(labels)
    counts = counts[counts > 0]
    # Stratifying needs every class on both sides; fall back to a plain shuffle when it can't.
    can_stratify = counts.min() >= 2 and len(counts) <= min(size, n - size)
    rest, held = train_test_split(
        np.arange(n),
        test_size=size,
        random_state=seed,
        stratify=labels if can_stratify else None,
    )
    return np.sort(rest), np.sort(held)


def subsample(labels: torch.Tensor, size: int | None, seed: int) -> np.ndarray:
    """Indices of a class-stratified subset of ``size`` items (all indices when None or >= N)."""
    n = len(labels)
    if size is None or size >= n:
        return np.arange(n)
    if size < 1:
        raise ValueError(f"subset size must be >= 1, got {size}")
    _, keep = stratified_split(labels, size, seed)
    return keep


def describe_sizes(*splits: Dataset | None) -> str:
    """Split sizes as "45000/5000/10000" (0 for a missing split)."""
    return "/".join(str(len(s)) if s is not None else "0" for s in splits)


def hold_out(
    full: ImageTensorSet, val_size: int | float, train_size: int | None, seed: int
) -> tuple[ImageTensorSet, ImageTensorSet | None]:
    """Split a training set into (train, val), class-stratified; then shrink train if asked."""
    n_val = resolve_size(val_size, len(full), "val_size")
    rest, held = stratified_split(full.labels, n_val, seed)
    train = full.subset(rest)
    train = train.subset(subsample(train.labels, train_size, seed))
    return train, (full.subset(held) if n_val else None)


# --------------------------------------------------------------------------- run identity

# Bytes of a tensor read for its fingerprint: whole rows (images) evenly spread over it.
_FINGERPRINT_BYTES = 1 << 22


def fingerprint(*tensors: torch.Tensor) -> str:
    """A short hash of tensors' shapes, dtypes and values, e.g. 'a3f09c1d2b4e5f60'.

    Tensors larger than ~4 MB are hashed on evenly spaced rows (dim 0), so fingerprinting
    50k CIFAR images takes milliseconds; any reordering or resampling of a split changes it.
    """
    digest = hashlib.blake2b(digest_size=8)
    for t in tensors:
        t = t.detach()
        if t.dtype == torch.bfloat16:  # NumPy has no bfloat16: hash the same bits as int16
            t = t.view(torch.int16)
        digest.update(f"{tuple(t.shape)} {t.dtype};".encode())
        if t.dim() and len(t):
            row = max(1, t[0].numel() * t.element_size())
            t = t[:: max(1, -(-len(t) * row // _FINGERPRINT_BYTES))]
        digest.update(t.cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def identity(data: object) -> dict[str, object] | None:
    """What identifies the data a loader (or dataset) yields, for a checkpoint to compare.

    Objects with an ``identity()`` method describe themselves (DeviceLoader, FolderSubset);
    a torch DataLoader is its batch size, sampler and dataset; a TensorDataset or Subset
    its fingerprint. Returns None for anything else (then nothing is compared).
    """
    if hasattr(data, "identity"):
        return data.identity()
    if isinstance(data, torch.utils.data.DataLoader):
        return {
            "type": "DataLoader",
            "batch_size": data.batch_size,
            "drop_last": data.drop_last,
            "sampler": identity(data.sampler) or type(data.sampler).__name__,
            "dataset": identity(data.dataset),
        }
    if isinstance(data, torch.utils.data.TensorDataset):
        return {"type": "TensorDataset", "size": len(data), "values": fingerprint(*data.tensors)}
    if isinstance(data, torch.utils.data.Subset):
        indices = torch.as_tensor(np.asarray(data.indices), dtype=torch.int64)
        return {"type": "Subset", "indices": fingerprint(indices), "of": identity(data.dataset)}
    return None
