"""Datasets and loaders for the course: real sets, your own images, offline sets, a fast loader.

    splits = helpers.data.course_data("cifar10")          # DataSplits (quick-mode aware)
    train, val, test = helpers.data.make_loaders(splits, batch_size=128, device=dev)

Real datasets (CIFAR-10/100, GTSRB) come through ``torchvision.datasets``; your own images
through :func:`load_image_folder`; ``digits`` (scikit-learn) and ``shapes`` (drawn here, with
object boxes) work offline. Small images are held as :class:`ImageTensorSet` uint8 tensors and
fed by :class:`DeviceLoader`, which augments whole batches on the training device
(:mod:`helpers.data.transforms`: the default crop and flip, Cutout, your own).
"""

from helpers.data.core import (
    DatasetCorruptError,
    DatasetUnavailableError,
    DataSplits,
    ImageTensorSet,
    channel_stats,
)
from helpers.data.digits import load_digits
from helpers.data.folder import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FolderSubset,
    image_transforms,
    load_image_folder,
)
from helpers.data.loader import DeviceLoader, make_loaders
from helpers.data.real import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    GTSRB_CLASSES,
    load_cifar10,
    load_cifar100,
    load_gtsrb,
)
from helpers.data.resize import resize_splits
from helpers.data.shapes import (
    QUICK_SHAPE_CLASSES,
    SHAPE_CLASSES,
    load_quick_shapes,
    load_shapes,
    make_shapes,
)
from helpers.data.sources import available, course_data, load
from helpers.data.transforms import BatchTransform, Cutout, RandomCropFlip

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "GTSRB_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "QUICK_SHAPE_CLASSES",
    "SHAPE_CLASSES",
    "BatchTransform",
    "Cutout",
    "DataSplits",
    "DatasetCorruptError",
    "DatasetUnavailableError",
    "DeviceLoader",
    "FolderSubset",
    "ImageTensorSet",
    "RandomCropFlip",
    "available",
    "channel_stats",
    "course_data",
    "image_transforms",
    "load",
    "load_cifar10",
    "load_cifar100",
    "load_digits",
    "load_gtsrb",
    "load_image_folder",
    "load_quick_shapes",
    "load_shapes",
    "make_loaders",
    "make_shapes",
    "resize_splits",
]
