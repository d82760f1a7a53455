"""A data loader that keeps a whole split of small images on the training device.

The usual pipeline decodes and augments one PIL image at a time in worker processes. For
32x32 images that per-image Python work, not the model, is the bottleneck. ``DeviceLoader``
instead holds the split as one uint8 tensor on the device and does shuffling, normalisation
and the augmentation (by default He et al.'s padded random crop and horizontal flip; any
:mod:`helpers.data.transforms` batch transform with ``transform=``) on whole batches.

Randomness is drawn on the CPU from a generator seeded by ``(seed, epoch)``, so an epoch's
batches are the same on any device and a resumed run replays exactly the same batches. An
epoch's order and augmentation parameters travel to the device once, at its start (pinned,
non-blocking): within an epoch the loader never makes the host wait for the GPU.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from helpers.data.core import (
    DataSplits,
    ImageTensorSet,
    check_image_tensors,
    fingerprint,
    identity,
    one_cpu_thread,
)
from helpers.data.folder import FolderSubset, image_transforms
from helpers.data.transforms import BatchTransform, RandomCropFlip, as_transform_list
from helpers.settings import device as default_device
from helpers.validate import check_int

# Values prepared at once. On a CPU, ~1M (4 MB of float32, 2 CIFAR batches of 128) keeps a
# chunk's uint8 and float copies in cache: measured 1.35x faster than 4M. On a GPU, larger
# chunks mean fewer kernel launches.
_CHUNK_ELEMENTS = {"cpu": 2**20}
_CHUNK_ELEMENTS_DEFAULT = 2**22


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator that is a pure function of (seed, epoch), well mixed by SeedSequence."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class DeviceLoader:
    """Iterate over a uint8 image tensor in normalised, optionally augmented, batches on a device.

    images: (N, C, H, W) uint8; labels: (N,) int64. Yields ``(x, y)`` with x (B, C, H, W)
    float32 normalised by ``mean``/``std`` (per channel, in [0, 1] units) and y (B,) int64,
    both on ``device``. ``augment=True`` applies a random crop from the image zero-padded by
    ``pad`` pixels and (if ``flip``) a random horizontal flip, per image, as in He et al. 2016
    (:class:`helpers.data.transforms.RandomCropFlip`). ``transform=`` replaces that with
    your own batch transform(s) on the device, in order, with their random numbers drawn
    like the crop's, e.g. ``transform=[RandomCropFlip(4), Cutout(8)]`` (the list is kept as
    ``loader.transforms``; see :mod:`helpers.data.transforms`).

    Distributed: with ``num_replicas=W`` every rank draws the same global batch of
    ``batch_size * W`` images (same shuffle, same augmentation) and yields its own slice,
    so W ranks with batch B see exactly what one process with batch W*B sees. Use
    ``drop_last=True`` for training under DDP so every rank's slice has the same size.

    Call ``set_epoch(e)`` before each epoch to make the order and augmentation a function of
    (seed, e); without it, each new iteration moves on to the next epoch by itself.

    Batches are prepared a chunk (a few batches) at a time and handed out
    as views of it; the model never waits on a worker process.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device | str | None = None,
        shuffle: bool = True,
        augment: bool = False,
        pad: int = 4,
        flip: bool = True,
        transform: BatchTransform | Sequence[BatchTransform] | Callable | None = None,
        drop_last: bool = False,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        check_image_tensors(images, labels)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.pad = check_int("pad", pad, 0)
        self.seed = check_int("seed", seed, 0)
        self.num_replicas = check_int("num_replicas", num_replicas, 1)
        self.rank = check_int("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got rank={rank}")
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(
                f"mean and std need one value per channel ({channels}), got mean={tuple(mean)} "
                f"and std={tuple(std)}"
            )
        if any(not math.isfinite(s) or s <= 0 for s in std):
            flat = [c for c, s in enumerate(std) if s == 0]
            why = (
                f" (channel(s) {flat}: every pixel of the split has the same value there, e.g. "
                "all-black images, or 16-bit images clipped to 255 by an 8-bit conversion)"
                if flat
                else ""
            )
            raise ValueError(f"std must be positive finite numbers, got {tuple(std)}{why}")
        if any(not math.isfinite(m) for m in mean):
            raise ValueError(f"mean must be finite numbers in [0, 1], got {tuple(mean)}")
        if any(not 0.0 <= m <= 1.0 for m in mean):
            raise ValueError(f"mean must be in [0, 1] pixel units (not 0-255), got {tuple(mean)}")

        self.device = torch.device(device) if device is not None else images.device
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        # x = (pixel / 255 - mean) / std, folded into one multiply-add per element.
        std_t = torch.tensor(self.std, device=self.device).view(1, -1, 1, 1)
        mean_t = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1)
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = -mean_t / std_t
        self.shuffle, self.augment, self.flip, self.drop_last = shuffle, augment, flip, drop_last
        if augment and transform is not None:
            raise ValueError(
                "augment=True (the default crop and flip) and transform= both given: pass "
                "one (e.g. transform=[RandomCropFlip(pad), Cutout(8)])"
            )
        if augment:
            transform = RandomCropFlip(self.pad, flip)
        self.transforms = [] if transform is None else as_transform_list(transform)
        self.epoch = 0

    @classmethod
    def from_set(cls, image_set: ImageTensorSet, **kwargs) -> DeviceLoader:
        """A DeviceLoader over an :class:`ImageTensorSet` (keyword arguments as for the class)."""
        if not isinstance(image_set, ImageTensorSet):
            raise TypeError(
                f"from_set expects an ImageTensorSet, got {type(image_set).__name__}; "
                "for other Datasets use torch.utils.data.DataLoader"
            )
        return cls(image_set.images, image_set.labels, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration's order and augmentation those of ``epoch`` (from 0)."""
        self.epoch = check_int("epoch", epoch, 0)

    @property
    def global_batch_size(self) -> int:
        """Images per step over all ranks: ``batch_size * num_replicas``."""
        return self.batch_size * self.num_replicas

    @property
    def num_images(self) -> int:
        """Images in the whole split (all ranks together)."""
        return len(self.labels)

    def __len__(self) -> int:
        """Batches per epoch (the same on every rank)."""
        if self.drop_last:
            return self.num_images // self.global_batch_size
        return math.ceil(self.num_images / self.global_batch_size)

    def _normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """(pixel / 255 - mean) / std as one multiply-add: uint8 (B, C, H, W) -> float32."""
        return pixels.float().mul_(self._scale).add_(self._shift)

    def _rank_slice(self, step: int) -> tuple[int, int]:
        """Positions [lo, hi) in the epoch's order of this rank's part of global batch ``step``.

        Exactly ``batch_size`` images per rank when the global batch is full; near-equal
        parts of a short last batch.
        """
        start = step * self.global_batch_size
        size = min(self.global_batch_size, self.num_images - start)
        lo = start + self.rank * size // self.num_replicas
        hi = start + (self.rank + 1) * size // self.num_replicas
        return lo, hi

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A CPU tensor on the loader's device; to a GPU through pinned memory, without waiting.

        A copy from ordinary (pageable) memory makes the host wait for the GPU; from pinned
        memory with ``non_blocking=True`` it is queued like a kernel (the pinned buffer is
        kept alive by torch until the copy has run).
        """
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = _epoch_generator(self.seed, self.epoch)
        self.epoch += 1  # the next iteration without set_epoch is the next epoch
        n = self.num_images
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        # Drawn per position in this epoch's order, for the global batch (all ranks alike).
        params = [t.sample(n, g) for t in self.transforms]

        # Several batches are prepared with one set of tensor operations and handed out as
        # views: fewer, larger operations keep a busy CPU (or a GPU's launch queue) efficient.
        c, h, w = self.images.shape[1:]
        chunk = _CHUNK_ELEMENTS.get(self.device.type, _CHUNK_ELEMENTS_DEFAULT)
        steps_per_chunk = max(1, chunk // (self.batch_size * c * h * w))
        chunks = [
            [self._rank_slice(s) for s in range(first, min(first + steps_per_chunk, len(self)))]
            for first in range(0, len(self), steps_per_chunk)
        ]
        if not chunks:
            return
        # This rank's images for the whole epoch, chunk after chunk: their indices and their
        # augmentation parameters go to the device once per epoch, not once per chunk, so a
        # chunk is only device work (slices of these, index_select, the transforms) and the
        # host never waits for the GPU inside an epoch.
        positions = torch.cat([torch.arange(lo, hi) for slices in chunks for lo, hi in slices])
        idx_epoch = self._to_device(order.index_select(0, positions))
        drawn_epoch = [
            tuple(self._to_device(t.index_select(0, positions)) for t in drawn) for drawn in params
        ]
        start = 0
        for slices in chunks:
            sizes = [hi - lo for lo, hi in slices]
            stop = start + sum(sizes)
            with one_cpu_thread(self.device):
                idx = idx_epoch[start:stop]
                # index_select, not images[idx]: on a CPU it copies whole images at once
                # (measured 20x faster than advanced indexing for a CIFAR chunk).
                x = self.images.index_select(0, idx)
                normalised = False
                for transform, drawn in zip(self.transforms, drawn_epoch, strict=True):
                    if not getattr(transform, "on_pixels", False) and not normalised:
                        x, normalised = self._normalise(x), True
                    x = transform(x, *(t[start:stop] for t in drawn))
                x = x if normalised else self._normalise(x)
                y = self.labels.index_select(0, idx)
            start = stop
            yield from zip(x.split(sizes), y.split(sizes), strict=True)

    def identity(self) -> dict[str, object]:
        """What a resumed run must find again: the images and labels (fingerprints), their
        normalisation, the batches (global size, order seed) and the augmentation."""
        return {
            "type": "DeviceLoader",
            "images": list(self.images.shape),
            "fingerprint": fingerprint(self.images, self.labels),
            "mean": list(self.mean),
            "std": list(self.std),
            "global_batch_size": self.global_batch_size,
            "drop_last": self.drop_last,
            "shuffle": self.shuffle,
            "seed": self.seed,
            "augmentation": [repr(t) for t in self.transforms],
        }

    def __repr__(self) -> str:
        c, h, w = self.images.shape[1:]
        aug = ", ".join(map(repr, self.transforms)) or "none"
        dist = f", rank {self.rank}/{self.num_replicas}" if self.num_replicas > 1 else ""
        return (
            f"DeviceLoader({self.num_images} images {c}x{h}x{w} on {self.device}, batch "
            f"{self.batch_size}, {len(self)} batches, shuffle={self.shuffle}, augment: {aug}{dist})"
        )


class EpochSampler(Sampler):
    """Indices in an order that is a function of (seed, epoch), each with its own seed.

    Yields ``(index, sample_seed)`` pairs for :class:`SeededSamples`: the order (shuffled or
    not) and every position's seed come from a generator seeded by (seed, epoch), so the
    epoch's images and their random augmentation are the same whichever worker reads them,
    and in a resumed run as in an uninterrupted one. With ``num_replicas`` > 1 each rank
    takes every ``num_replicas``-th position (the order padded by repeating its start, as
    ``DistributedSampler`` does, or cut with ``drop_last``).

    Call ``set_epoch(e)`` before each epoch; without it, each new iteration moves on to the
    next epoch by itself.
    """

    def __init__(
        self,
        size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.size = check_int("size", size, 0)
        self.seed = check_int("seed", seed, 0)
        self.num_replicas = check_int("num_replicas", num_replicas, 1)
        self.rank = check_int("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got rank={rank}")
        self.shuffle, self.drop_last = shuffle, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration's order and seeds those of ``epoch`` (from 0)."""
        self.epoch = check_int("epoch", epoch, 0)

    def _total(self) -> int:
        """Positions over all ranks: a multiple of num_replicas."""
        whole, rest = divmod(self.size, self.num_replicas)
        return (whole + (rest > 0 and not self.drop_last)) * self.num_replicas

    def __len__(self) -> int:
        """Samples per epoch on this rank."""
        return self._total() // self.num_replicas

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = _epoch_generator(self.seed, self.epoch)
        self.epoch += 1
        n = self.size
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        seeds = torch.randint(0, 2**62, (n,), generator=g)
        total = self._total()
        if n and total > n:  # pad by repeating the start of the order
            repeat = torch.arange(total) % n
            order, seeds = order[repeat], seeds[repeat]
        mine = slice(self.rank, total, self.num_replicas)
        yield from zip(order[mine].tolist(), seeds[mine].tolist(), strict=True)

    def identity(self) -> dict[str, object]:
        """What a resumed run must find again: the order's seed and shape."""
        return {
            "type": "EpochSampler",
            "seed": self.seed,
            "shuffle": self.shuffle,
            "size": self.size,
            "num_replicas": self.num_replicas,
            "drop_last": self.drop_last,
        }


class SeededSamples(Dataset):
    """A dataset read with ``(index, seed)`` keys (from :class:`EpochSampler`): each sample's
    transform draws from torch's random stream seeded with ``seed``.

    The random state is forked around each read, so the process's own stream (that of the
    main process when ``num_workers=0``) does not change.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> object:
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]

    def __getattr__(self, name: str) -> object:
        # The wrapped dataset's attributes (transform, folder ...), as if it were not wrapped.
        if name == "dataset":  # not set yet (unpickling in a worker): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def identity(self) -> dict[str, object] | None:
        """The identity of the wrapped dataset."""
        return identity(self.dataset)


def make_loaders(
    splits: DataSplits,
    *,
    batch_size: int,
    device: torch.device | str | None = None,
    augment: bool = True,
    eval_batch_size: int | None = None,
    seed: int = 0,
    pad: int | None = None,
    transform: BatchTransform | Sequence[BatchTransform] | Callable | None = None,
    drop_last: bool = False,
    num_replicas: int = 1,
    rank: int = 0,
    num_workers: int | None = None,
) -> tuple[
    DeviceLoader | DataLoader, DeviceLoader | DataLoader | None, DeviceLoader | DataLoader | None
]:
    """Train, val and test loaders for a :class:`DataSplits` (None where a split is None).

    ImageTensorSets get a :class:`DeviceLoader` (training: shuffled, and with ``augment`` the
    pad + crop + flip augmentation, flip only where ``splits.flip``); other Datasets get a
    ``torch.utils.data.DataLoader`` whose augmentation lives in the dataset's transform
    (``augment=False`` switches the training split to the evaluation transform); its
    training order and each image's augmentation are a function of (seed, epoch, position)
    (:class:`EpochSampler`), so a resumed run replays them exactly.
    ``pad`` defaults to image_size // 8 (4 pixels at 32x32). ``transform`` replaces the
    training loader's crop and flip (DeviceLoader only; with ``augment`` True or False).
    Evaluation loaders never shuffle.
    """

    device = torch.device(device) if device is not None else default_device()
    eval_batch_size = eval_batch_size or batch_size
    pad = splits.image_size // 8 if pad is None else pad
    if num_workers is None:
        num_workers = min(4, os.cpu_count() or 1)

    def build(split: Dataset | None, train: bool):
        if split is None:
            return None
        if isinstance(split, ImageTensorSet):
            custom = train and transform is not None
            return DeviceLoader.from_set(
                split,
                batch_size=batch_size if train else eval_batch_size,
                mean=splits.mean,
                std=splits.std,
                device=device,
                shuffle=train,
                augment=train and augment and not custom,
                pad=pad,
                flip=splits.flip,
                transform=transform if custom else None,
                drop_last=drop_last and train,
                seed=seed,
                num_replicas=num_replicas,
                rank=rank,
            )
        if train and transform is not None:
            raise ValueError(
                "transform= is for DeviceLoader splits (ImageTensorSet); images read from files "
                "are augmented by their dataset's torchvision transform"
            )
        if train and not augment and isinstance(split, FolderSubset):
            split = split.with_transform(
                image_transforms(splits.image_size, splits.mean, splits.std, train=False)
            )
        sampler = None
        if train:
            # The order and every image's augmentation are a function of (seed, epoch,
            # position), whichever worker reads it: a resumed run replays them exactly.
            sampler = EpochSampler(
                len(split), seed=seed, num_replicas=num_replicas, rank=rank, drop_last=drop_last
            )
            split = SeededSamples(split)
        elif num_replicas > 1:
            sampler = torch.utils.data.DistributedSampler(
                split, num_replicas=num_replicas, rank=rank, shuffle=False, seed=seed
            )
        return DataLoader(
            split,
            batch_size=batch_size if train else eval_batch_size,
            sampler=sampler,
            drop_last=drop_last and train,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
            persistent_workers=train and num_workers > 0,  # don't keep idle eval workers
            # The workers' base seed comes from here, not from torch's global stream: making
            # a loader's iterator must not change the model's random numbers (dropout).
            generator=torch.Generator().manual_seed(seed),
        )

    return build(splits.train, True), build(splits.val, False), build(splits.test, False)
