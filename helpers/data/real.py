"""Real datasets through ``torchvision.datasets``: CIFAR-10, CIFAR-100 and GTSRB.

They live in the data root (``helpers.settings.data_root()``: ``data/`` or ``$COURSE_DATA``) or
``root=``. CIFAR is found there in torchvision's format (``cifar-10-batches-py/``) or as an
ImageFolder tree a user copied in (``cifar10/train/<class>/*``, optional
``cifar10/test/<class>/*``; without ``test/`` a stratified held-out part of the training
images stands in for the test split, and ``source`` says so); otherwise it is downloaded.
A set that is not on disk and cannot be downloaded raises :class:`DatasetUnavailableError`
naming the missing files and both ways to get them; a file that fails torchvision's md5 check
raises :class:`DatasetCorruptError` naming the file.

Normalisation: CIFAR-10/100 use the published per-channel mean/std of their training sets
(std over all pixels); GTSRB computes them from its resized training split.
"""

from __future__ import annotations

import os
import pickle
import urllib.error
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision.datasets.utils import check_integrity

from helpers.data.core import (
    DatasetCorruptError,
    DatasetUnavailableError,
    DataSplits,
    ImageTensorSet,
    channel_stats,
    describe_sizes,
    hold_out,
    resolve_size,
    stratified_split,
    subsample,
)
from helpers.data.folder import _scan_folder, decode_images
from helpers.settings import data_root

# torchvision's class order (its meta file's), which is also the sorted folder order.
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)

GTSRB_CLASSES = [
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70",
    "speed limit 80", "end of speed limit 80", "speed limit 100", "speed limit 120", "no passing",
    "no passing for trucks", "right-of-way at next intersection", "priority road", "yield",
    "stop", "no vehicles", "no trucks", "no entry", "general caution", "dangerous curve left",
    "dangerous curve right", "double curve", "bumpy road", "slippery road",
    "road narrows on the right", "road work", "traffic signals", "pedestrians",
    "children crossing", "bicycles crossing", "beware of ice/snow", "wild animals crossing",
    "end of all limits", "turn right ahead", "turn left ahead", "ahead only",
    "go straight or right", "go straight or left", "keep right", "keep left",
    "roundabout mandatory", "end of no passing", "end of no passing for trucks",
]  # fmt: skip

# Errors a download raises when there is no network (urllib's URLError is an OSError).
_NETWORK_ERRORS = (urllib.error.URLError, OSError, TimeoutError, RuntimeError)
_GET_IT = (
    "or copy an already extracted copy there, or point COURSE_DATA (or root=) at a directory that "
    "already holds it"
)


def _root(root: str | os.PathLike | None) -> Path:
    return Path(root).expanduser() if root is not None else data_root()


def _download_failed(
    label: str, url: str, folder: Path, problems: Sequence[str], err: Exception, also: str = ""
) -> DatasetUnavailableError:
    return DatasetUnavailableError(
        f"{label} is not usable on disk ({'; '.join(problems)}) and downloading it failed "
        f"({type(err).__name__}: {err}).\n"
        f"Expected it in: {folder}\n"
        f"Get it: with network access run helpers.data.load(..., download=True), or download "
        f"{url} yourself and extract it into {folder.parent}, {_GET_IT}.{also}"
    )


# --------------------------------------------------------------------------- CIFAR-10/100


def _cifar_files(cls: type) -> list[tuple[str, str]]:
    """(filename, md5) of every file torchvision's CIFAR class needs, meta file included."""
    return [*cls.train_list, *cls.test_list, (cls.meta["filename"], cls.meta["md5"])]


def _check_cifar(cls: type, folder: Path) -> tuple[list[Path], list[Path]]:
    """Return (missing, corrupt) files of a CIFAR directory, checked like torchvision does (md5)."""
    missing, corrupt = [], []
    for filename, md5 in _cifar_files(cls):
        path = folder / filename
        if not path.is_file():
            missing.append(path)
        elif not check_integrity(str(path), md5):
            corrupt.append(path)
    return missing, corrupt


def _load_cifar(
    cls: type, label: str, root: Path, download: bool, also: str = ""
) -> tuple[torchvision.datasets.CIFAR10, torchvision.datasets.CIFAR10]:
    """The training and test sets in torchvision's format; ``also``: another way to provide
    them, added to the message when they are not there."""
    folder = root / cls.base_folder
    missing, corrupt = _check_cifar(cls, folder)
    # An archive copied in by hand is extracted by torchvision's download step without any
    # network access (it checks the archive's md5 first), so that path is taken even offline.
    archive_copied_in = (root / cls.filename).is_file()
    if (missing or corrupt) and (download or archive_copied_in):
        try:
            cls(root=str(root), train=True, download=True)
        except _NETWORK_ERRORS as err:
            problems = [f"corrupt {p}" for p in corrupt]
            if missing:
                problems.insert(0, f"missing {', '.join(p.name for p in missing)} in {folder}")
            raise _download_failed(label, cls.url, folder, problems, err, also) from err
        missing, corrupt = _check_cifar(cls, folder)
    if corrupt:
        sizes = ", ".join(f"{p} ({p.stat().st_size:,} bytes)" for p in corrupt)
        raise DatasetCorruptError(
            f"{label}: corrupt or truncated file(s), their md5 checksum does not match: {sizes}.\n"
            f"Delete {folder} and download again: helpers.data.load(..., download=True), or "
            f"fetch {cls.url} and extract it into {root}."
        )
    if missing:
        names = ", ".join(p.name for p in missing)
        raise DatasetUnavailableError(
            f"{label} is not on disk: missing {names} in {folder}.\n"
            f"Get it: run helpers.data.load(..., download=True) with network access, or download "
            f"{cls.url} and extract it into {root} (so that {missing[0]} exists), {_GET_IT}.{also}"
        )
    try:
        return cls(root=str(root), train=True), cls(root=str(root), train=False)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as err:
        raise DatasetCorruptError(f"{label}: cannot read the files in {folder}: {err}") from err


def _folder_tree(label: str, root: Path) -> Path:
    """Where a user's ImageFolder copy of a CIFAR set lives: ``root/cifar10/`` (or cifar100)."""
    return root / label.lower().replace("-", "")


def _decode_tree(path: Path, label: str, classes: list[str] | None) -> tuple[ImageTensorSet, list]:
    """Every image of an ImageFolder tree as one (N, 3, 32, 32) uint8 set, and its classes.

    ``classes``: the class names the tree must have (in order), or None for any."""
    folder = _scan_folder(path)
    if classes is not None and folder.classes != classes:
        raise ValueError(
            f"{path} holds the classes {folder.classes}, not {label}'s {classes} (one folder "
            "per class, named as torchvision names them)"
        )
    images = decode_images([p for p, _ in folder.samples], 32, False, None)
    return ImageTensorSet(images, torch.tensor(folder.targets, dtype=torch.int64)), folder.classes


def _cifar_sets(
    cls: type, label: str, root: Path, download: bool
) -> tuple[ImageTensorSet, ImageTensorSet | None, list[str], str]:
    """(training images, official test images or None, class names, where they came from),
    found in torchvision's format, else in a user's ImageFolder tree, else downloaded."""
    missing, corrupt = _check_cifar(cls, root / cls.base_folder)
    tree = _folder_tree(label, root)
    if (missing or corrupt) and (tree / "train").is_dir():
        expected = list(CIFAR10_CLASSES) if cls is torchvision.datasets.CIFAR10 else None
        train, classes = _decode_tree(tree / "train", label, expected)
        test = _decode_tree(tree / "test", label, classes)[0] if (tree / "test").is_dir() else None
        return train, test, classes, f"image folder {tree}"
    also = (
        f"\nOr copy the images in ImageFolder layout to {tree}/train/<class>/ "
        f"(optional {tree}/test/<class>/)."
    )
    train_ds, test_ds = _load_cifar(cls, label, root, download, also)

    def as_set(ds) -> ImageTensorSet:  # torchvision keeps (N, H, W, C) uint8 numpy arrays
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return ImageTensorSet(images, torch.tensor(ds.targets, dtype=torch.int64))

    origin = f"torchvision, {root / cls.base_folder}"
    return as_set(train_ds), as_set(test_ds), list(train_ds.classes), origin


def _cifar_splits(
    cls: type,
    label: str,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    root: str | os.PathLike | None,
    download: bool,
    val_size: int | float,
    train_size: int | None,
    test_size: int | None,
    seed: int,
) -> DataSplits:
    root_path = _root(root)
    full_train, test, classes, origin = _cifar_sets(cls, label, root_path, download)
    test_note = "official test split"
    if test is None:  # an ImageFolder copy without test/: held-out training images stand in
        n_test = resolve_size(0.1 if test_size is None else test_size, len(full_train), "test_size")
        rest, held = stratified_split(full_train.labels, n_test, seed)
        full_train, test = full_train.subset(rest), full_train.subset(held)
        test_note = f"NO official test split: {len(test):,} held-out training images stand in"
    else:
        test = test.subset(subsample(test.labels, test_size, seed))
    train, val = hold_out(full_train, val_size, train_size, seed)
    return DataSplits(
        train=train,
        val=val,
        test=test,
        classes=classes,
        num_classes=len(classes),
        mean=mean,
        std=std,
        image_size=32,
        source=f"{label} ({origin}), {describe_sizes(train, val, test)} train/val/test "
        f"(val held out of train, seed {seed}; {test_note})",
        flip=True,
        name=label.lower().replace("-", ""),
    )


def _cifar_loader(cls: type, label: str, mean: tuple[float, ...], std: tuple[float, ...], doc: str):
    """The public loader of one CIFAR set (CIFAR-10 and CIFAR-100 differ only in these)."""

    def load(
        *,
        root: str | os.PathLike | None = None,
        download: bool = True,
        val_size: int | float = 5000,
        train_size: int | None = None,
        test_size: int | None = None,
        seed: int = 0,
        image_size: int = 32,
    ) -> DataSplits:
        if image_size != 32:
            raise ValueError(
                f"CIFAR images are 32x32 and are used at that size here, got "
                f"image_size={image_size!r}"
            )
        return _cifar_splits(
            cls, label, mean, std, root=root, download=download, val_size=val_size,
            train_size=train_size, test_size=test_size, seed=seed,
        )  # fmt: skip

    load.__name__ = load.__qualname__ = f"load_{label.lower().replace('-', '')}"
    load.__doc__ = doc
    return load


load_cifar10 = _cifar_loader(
    torchvision.datasets.CIFAR10, "CIFAR-10", CIFAR10_MEAN, CIFAR10_STD,
    "CIFAR-10: 45k/5k train/val held out of the official training set, 10k official test.",
)  # fmt: skip
load_cifar100 = _cifar_loader(
    torchvision.datasets.CIFAR100, "CIFAR-100", CIFAR100_MEAN, CIFAR100_STD,
    "CIFAR-100 (100 fine classes): 45k/5k train/val, 10k official test.",
)  # fmt: skip


# --------------------------------------------------------------------------- GTSRB

_GTSRB_BASE = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"


def _gtsrb_split(root: Path, split: str, download: bool) -> torchvision.datasets.GTSRB:
    base = root / "gtsrb"
    expected = {
        "train": [base / "GTSRB" / "Training"],
        "test": [base / "GTSRB" / "Final_Test" / "Images", base / "GT-final_test.csv"],
    }[split]
    url = _GTSRB_BASE + (
        "GTSRB-Training_fixed.zip"
        if split == "train"
        else "GTSRB_Final_Test_Images.zip and GTSRB_Final_Test_GT.zip"
    )
    if not all(p.exists() for p in expected) and download:
        try:
            torchvision.datasets.GTSRB(root=str(root), split=split, download=True)
        except _NETWORK_ERRORS as err:
            problems = [f"missing {p}" for p in expected if not p.exists()]
            raise _download_failed(f"GTSRB ({split})", url, base, problems, err) from err
    missing = [p for p in expected if not p.exists()]
    if missing:
        raise DatasetUnavailableError(
            f"GTSRB ({split} split) is not on disk: missing {', '.join(map(str, missing))}.\n"
            f"Get it: run helpers.data.load('gtsrb', download=True) with network access, or "
            f"download {url} and extract into {base}, {_GET_IT}."
        )
    return torchvision.datasets.GTSRB(root=str(root), split=split)


def _gtsrb_track_split(paths: Sequence[str], labels: np.ndarray, n_val: int, seed: int):
    """Hold out whole tracks (GTSRB has ~30 photos of each physical sign: TTTTT_IIIII.ppm).

    A random image split would put near-copies of validation images in the training set.
    Returns (train_indices, val_indices), about ``n_val`` validation images.
    """
    tracks = np.array(
        [f"{label}/{Path(p).name.split('_')[0]}" for p, label in zip(paths, labels, strict=True)]
    )
    unique = np.unique(tracks)
    order = np.random.default_rng(seed).permutation(len(unique))
    counts = {t: c for t, c in zip(*np.unique(tracks, return_counts=True), strict=True)}
    chosen, total = set(), 0
    for t in unique[order]:
        if total >= n_val:
            break
        chosen.add(t)
        total += counts[t]
    is_val = np.isin(tracks, list(chosen))
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def load_gtsrb(
    *,
    root: str | os.PathLike | None = None,
    download: bool = True,
    val_size: int | float = 0.1,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    image_size: int = 32,
    workers: int | None = None,
) -> DataSplits:
    """GTSRB (43 traffic-sign classes) resized to ``image_size`` squares, as ImageTensorSets.

    Validation holds out whole tracks of the official training set (about ``val_size``
    images); test is the official 12,630-image test set. Mean/std come from the train split.
    Horizontal flips change some signs' meaning (turn left/right), so ``flip=False``.
    """
    root_path = _root(root)
    train_ds = _gtsrb_split(root_path, "train", download)
    test_ds = _gtsrb_split(root_path, "test", download)
    # torchvision lists (path, class) pairs in ._samples and has no public accessor for them.
    train_paths, train_labels = map(list, zip(*train_ds._samples, strict=True))
    test_paths, test_labels = map(list, zip(*test_ds._samples, strict=True))
    n_val = resolve_size(val_size, len(train_paths), "val_size")
    labels = np.asarray(train_labels)
    train_idx, val_idx = _gtsrb_track_split(train_paths, labels, n_val, seed)

    def build(paths, labels_, indices) -> ImageTensorSet:
        chosen = [paths[i] for i in indices]
        images = decode_images(chosen, image_size, square=True, workers=workers)
        return ImageTensorSet(
            images, torch.as_tensor(np.asarray(labels_)[indices], dtype=torch.int64)
        )

    train_idx = train_idx[subsample(torch.as_tensor(labels[train_idx]), train_size, seed)]
    test_idx = subsample(torch.as_tensor(test_labels), test_size, seed)
    train = build(train_paths, train_labels, train_idx)
    val = build(train_paths, train_labels, val_idx) if len(val_idx) else None
    test = build(test_paths, test_labels, test_idx)
    mean, std = channel_stats(train.images)
    return DataSplits(
        train=train,
        val=val,
        test=test,
        classes=list(GTSRB_CLASSES),
        num_classes=43,
        mean=mean,
        std=std,
        image_size=image_size,
        source=f"GTSRB (torchvision, {root_path / 'gtsrb'}) resized to {image_size}x{image_size}, "
        f"{describe_sizes(train, val, test)} train/val/test (val: whole tracks, seed {seed})",
        flip=False,
        name="gtsrb",
    )
