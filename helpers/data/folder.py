"""Your own images in ImageFolder layout (``root/<class>/<image>``), and image decoding.

Small images (``image_size <= 64`` by default) are decoded once into an ImageTensorSet for
the DeviceLoader, with mean/std computed from the training split. Larger images stay on disk
and are read on the fly with torchvision v2 transforms (RandomResizedCrop + flip for
training), normalised with the ImageNet statistics that pretrained weights expect.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms import v2

from helpers.data.core import (
    DatasetCorruptError,
    DatasetUnavailableError,
    DataSplits,
    ImageTensorSet,
    channel_stats,
    describe_sizes,
    fingerprint,
    resolve_size,
    stratified_split,
    subsample,
)
from helpers.validate import check_int

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- image decoding


def _fit(image: torch.Tensor, size: int, square: bool) -> torch.Tensor:
    """Resize (3, H, W) uint8 to (3, size, size): straight, or shorter side + centre crop."""
    if tuple(image.shape[-2:]) == (size, size):
        return image
    if square:
        return v2.functional.resize(image, [size, size], antialias=True)
    image = v2.functional.resize(image, size, antialias=True)  # shorter side -> size
    return v2.functional.center_crop(image, [size, size])


# 16-bit greyscale (PNG, TIFF): Pillow's convert("RGB") clips these at 255 instead of
# scaling them, which turns almost every pixel white.
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def to_rgb(img: Image.Image, path: str | os.PathLike = "") -> Image.Image:
    """An opened image as 8-bit RGB; 16-bit greyscale is scaled (65535 -> 255), not clipped.

    32-bit integer ('I') and float ('F') images have no agreed value range (0-1? 0-255?
    raw sensor counts?): ValueError naming the file and the mode, and what to do.
    """
    if img.mode in _SIXTEEN_BIT:
        wide = np.asarray(img, dtype=np.uint16).astype(np.uint32)
        return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8)).convert("RGB")
    if img.mode in ("I", "F"):
        kind = "32-bit integer" if img.mode == "I" else "32-bit float"
        raise ValueError(
            f"image file {path} has mode {img.mode!r} ({kind} pixels), whose value range is "
            "not known: convert it to 8-bit (or 16-bit) PNG or JPEG first, scaling its values "
            "to the full range"
        )
    return img.convert("RGB")


def open_rgb(path: str) -> Image.Image:
    """Read an image file as 8-bit RGB (see :func:`to_rgb`); the ImageFolder's loader."""
    with Image.open(path) as img:
        return to_rgb(img, path)


def _read_image(path: str, size: int, square: bool) -> torch.Tensor:
    """One image file as a (3, size, size) uint8 tensor (RGB; grey images are repeated)."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # a big JPEG is decoded at a reduced scale: faster
            array = np.array(to_rgb(img, path), dtype=np.uint8)  # a writable copy
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DatasetCorruptError(f"cannot read image file {path}: {err}") from err
    except ValueError as err:
        if str(err).startswith(f"image file {path} has mode"):
            raise
        raise DatasetCorruptError(f"cannot read image file {path}: {err}") from err
    return _fit(torch.from_numpy(array).permute(2, 0, 1), size, square)


def decode_images(
    paths: Sequence[str], image_size: int, square: bool, workers: int | None
) -> torch.Tensor:
    """Decode image files into one (N, 3, S, S) uint8 tensor, chunks of files per thread.

    ``square=True`` resizes straight to S x S (GTSRB: signs fill a near-square frame);
    otherwise the shorter side goes to S and the centre is cropped (keeps the aspect ratio).
    Pillow releases the GIL while it decodes, so threads can share the work across cores.
    """
    out = torch.empty((len(paths), 3, image_size, image_size), dtype=torch.uint8)

    def work(start: int) -> None:
        for i in range(start, min(start + 256, len(paths))):
            out[i] = _read_image(paths[i], image_size, square)

    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(work, range(0, len(paths), 256)))  # list(): re-raises a worker's error
    return out


# --------------------------------------------------------------------------- ImageFolder


def image_transforms(
    image_size: int, mean: Sequence[float], std: Sequence[float], *, train: bool
) -> v2.Compose:
    """torchvision v2 transforms for large images: PIL image -> normalised float (C, S, S).

    Training: RandomResizedCrop + horizontal flip (the ImageNet recipe). Evaluation: resize
    the shorter side to S * 256/224, then centre-crop S.
    """
    if train:
        geometry = [v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()]
    else:
        geometry = [
            v2.Resize(round(image_size * 256 / 224), antialias=True),
            v2.CenterCrop(image_size),
        ]
    return v2.Compose(
        [
            v2.ToImage(),
            *geometry,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(mean), std=list(std)),
        ]
    )


class FolderSubset(Dataset):
    """Some images of a ``torchvision.datasets.ImageFolder``, read with their own transform.

    ``folder[i]`` of the underlying ImageFolder must return (PIL image, class); this wrapper
    lets train and validation share one scan of the folder but differ in augmentation.
    """

    def __init__(
        self, folder: torchvision.datasets.ImageFolder, indices: Sequence[int], transform: Callable
    ) -> None:
        self.folder, self.indices, self.transform = folder, list(indices), transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.folder.samples[self.indices[i]]
        try:
            image = self.folder.loader(path)
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise DatasetCorruptError(f"cannot read image file {path}: {err}") from err
        return self.transform(image), label

    def identity(self) -> dict[str, object]:
        """What a resumed run must find again: the class names, the folder's file list and
        labels and this subset's part of it (fingerprints), and the transform."""
        root = Path(self.folder.root)
        files = "\n".join(
            f"{Path(path).relative_to(root).as_posix()}\t{label}"
            for path, label in self.folder.samples
        )
        return {
            "type": "FolderSubset",
            "classes": list(self.folder.classes),
            "files": len(self.folder.samples),
            "file_list": hashlib.blake2b(files.encode(), digest_size=8).hexdigest(),
            "images": fingerprint(torch.as_tensor(self.indices, dtype=torch.int64)),
            "transform": repr(self.transform),
        }

    def with_transform(self, transform: Callable) -> FolderSubset:
        """The same images with another transform (e.g. evaluation transforms for training data)."""
        return FolderSubset(self.folder, self.indices, transform)

    def __repr__(self) -> str:
        return f"FolderSubset({len(self)} images of {self.folder.root})"


def _scan_folder(path: Path) -> torchvision.datasets.ImageFolder:
    """The ImageFolder at ``path``, with at least two classes; says once if some images are
    in deeper sub-folders (they count as their top-level class)."""
    if not path.is_dir():
        raise DatasetUnavailableError(
            f"image folder {path} does not exist: expected {path}/<class name>/<image files>"
        )
    try:
        folder = torchvision.datasets.ImageFolder(str(path), loader=open_rgb)
    except FileNotFoundError as err:  # torchvision: no class folders or no images in them
        raise ValueError(
            f"{path} is not an ImageFolder: expected one sub-folder per class holding image "
            f"files ({', '.join(torchvision.datasets.folder.IMG_EXTENSIONS)}); {err}"
        ) from err
    if len(folder.classes) < 2:
        raise ValueError(
            f"{path} holds {len(folder.classes)} class folder ({folder.classes[0]!r}): a "
            "classifier needs at least two classes (with one, every answer is right and the "
            f"loss goes to 0). Expected {path}/<class name>/<image files>, one sub-folder "
            "per class; is the folder one level too deep?"
        )
    nested = [p for p, _ in folder.samples if len(Path(p).relative_to(path).parts) > 2]
    if nested:
        example = Path(nested[0]).relative_to(path)
        warnings.warn(
            f"{len(nested)} images of {path} are in sub-folders of class folders (e.g. "
            f"{example}); each counts as its top-level class ({example.parts[0]!r}). If the "
            "sub-folders are the classes, point at the folder above them instead.",
            stacklevel=3,
        )
    return folder


def load_image_folder(
    path: str | os.PathLike,
    *,
    image_size: int = 224,
    val_size: int | float = 0.1,
    test_size: int | float = 0.1,
    test_path: str | os.PathLike | None = None,
    train_size: int | None = None,
    seed: int = 0,
    as_tensors: bool | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    workers: int | None = None,
) -> DataSplits:
    """Your own images in ImageFolder layout: ``path/<class>/<image>``.

    Val and test are held out of ``path`` (class-stratified, fixed ``seed``) unless
    ``test_path`` points at a separate folder with the same classes. With ``as_tensors``
    (default: ``image_size <= 64``) every image is decoded once, resized (shorter side to
    ``image_size``, centre crop) and held as an ImageTensorSet for the DeviceLoader; mean/std
    are then computed from the train split. Otherwise the splits read files on the fly with
    :func:`image_transforms` and use the ImageNet statistics (what pretrained weights expect)
    unless ``mean``/``std`` are given.
    """
    check_int("image_size", image_size, 1)
    folder = _scan_folder(Path(path).expanduser())
    labels = torch.tensor(folder.targets, dtype=torch.int64)
    test_folder = _scan_folder(Path(test_path).expanduser()) if test_path is not None else None
    if test_folder is not None and test_folder.classes != folder.classes:
        raise ValueError(
            f"test_path classes {test_folder.classes} differ from {path} classes {folder.classes}"
        )
    n_test = 0 if test_folder is not None else resolve_size(test_size, len(labels), "test_size")
    rest, test_idx = stratified_split(labels, n_test, seed)
    n_val = resolve_size(val_size, len(labels), "val_size")
    keep, val_idx = stratified_split(labels[rest], n_val, seed)
    train_idx = rest[keep][subsample(labels[rest[keep]], train_size, seed)]
    val_idx = rest[val_idx]
    if as_tensors is None:
        as_tensors = image_size <= 64

    def paths(source, indices) -> list[str]:
        return [source.samples[i][0] for i in indices]

    if as_tensors:

        def build(source, indices) -> ImageTensorSet | None:
            if len(indices) == 0:
                return None
            images = decode_images(paths(source, indices), image_size, False, workers)
            return ImageTensorSet(
                images, torch.as_tensor(np.asarray(source.targets)[indices], dtype=torch.int64)
            )

        train = build(folder, train_idx)
        if mean is None or std is None:
            mean, std = channel_stats(train.images)
    else:
        mean = IMAGENET_MEAN if mean is None else mean
        std = IMAGENET_STD if std is None else std
        train_tf = image_transforms(image_size, mean, std, train=True)
        eval_tf = image_transforms(image_size, mean, std, train=False)

        def build(source, indices, transform=eval_tf) -> FolderSubset | None:
            return FolderSubset(source, indices, transform) if len(indices) else None

        train = build(folder, train_idx, train_tf)
    val = build(folder, val_idx)
    test = (
        build(test_folder, np.arange(len(test_folder.samples)))
        if test_folder is not None
        else build(folder, test_idx)
    )
    kind = "uint8 tensors" if as_tensors else "files read on the fly"
    return DataSplits(
        train=train,
        val=val,
        test=test,
        classes=list(folder.classes),
        num_classes=len(folder.classes),
        mean=tuple(mean),
        std=tuple(std),
        image_size=image_size,
        source=f"ImageFolder {path} at {image_size}x{image_size} ({kind}), "
        f"{describe_sizes(train, val, test)} train/val/test (seed {seed})",
        flip=True,
        name="imagefolder",
    )
