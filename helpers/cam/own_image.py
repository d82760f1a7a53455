"""Explaining a photo of your own: a classifier bundled with its preprocessing and class names.

    clf = helpers.cam.imagenet_classifier()               # ResNet50, torchvision's weights
    clf = helpers.cam.course_classifier(model, data)      # a course model and its DataSplits
    x = clf.load("my_photo.jpg")                          # (1, C, S, S), normalised
    maps = helpers.cam.grad_cam(clf.model, x)

A map is only as meaningful as the input is faithful to what the model was trained on, so the
image goes through the model's own preprocessing: ``weights.transforms()`` for torchvision's
weights, the size and channel statistics of the training set for a course model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor, nn
from torchvision.models import ResNet50_Weights
from torchvision.transforms import v2

from helpers import models
from helpers.cam.core import _check_model

__all__ = ["ImageClassifier", "course_classifier", "imagenet_classifier", "save_image"]


@dataclass(frozen=True)
class ImageClassifier:
    """A model with what it takes to explain an image file: preprocessing, classes, statistics.

    ``preprocess`` turns a PIL image (in ``image_mode``, "RGB" or "L") into the normalised float
    tensor (C, S, S) the model expects; ``mean``/``std`` undo that normalisation for display.
    """

    model: nn.Module
    preprocess: Callable[[Image.Image], Tensor]
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    description: str
    image_mode: str = "RGB"

    def load(self, path: str | os.PathLike) -> Tensor:
        """The image file at ``path`` as one input: (1, C, S, S) float, normalised.

        Raises FileNotFoundError if there is no such file and ValueError if it is not an
        image that Pillow can read.
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
        try:
            with Image.open(path) as img:
                image = img.convert(self.image_mode)
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"{path} is not an image file Pillow can read: {err}") from err
        return self.preprocess(image).unsqueeze(0)


def imagenet_classifier() -> ImageClassifier:
    """The course's ResNet50 with torchvision's ImageNet weights (``ResNet50_Weights.DEFAULT``).

    Inputs go through the weights' own ``transforms()`` (resize to 232, centre-crop 224,
    ImageNet statistics): ``load`` gives (1, 3, 224, 224). The 1,000 class names come from
    the weights' metadata. Downloads the weights (about 100 MB) unless they are cached.
    """
    weights = ResNet50_Weights.DEFAULT
    model = models.resnet50()
    model.load_state_dict(weights.get_state_dict(progress=False))
    preprocess = weights.transforms()
    return ImageClassifier(
        model=model.eval(),
        preprocess=preprocess,
        classes=list(weights.meta["categories"]),
        mean=tuple(preprocess.mean),
        std=tuple(preprocess.std),
        description=f"ImageNet ResNet50 (torchvision weights {weights.name})",
    )


def course_classifier(model: nn.Module, data: Any) -> ImageClassifier:
    """A model trained on ``data`` (a :class:`helpers.data.DataSplits`), preprocessed like it.

    ``load`` resizes the shorter side to ``data.image_size``, centre-crops a square, scales
    the pixels to [0, 1] and normalises them with ``data.mean``/``data.std``: (1, C, S, S)
    with C = ``data.in_chans`` (1 reads the image in grey, 3 in RGB).
    """
    _check_model(model)
    needed = ("classes", "image_size", "mean", "std", "in_chans")
    missing = [name for name in needed if not hasattr(data, name)]
    if missing:
        raise ValueError(
            f"data must be a helpers.data.DataSplits (it has none of {missing}), got "
            f"{type(data).__name__}"
        )
    if data.in_chans not in (1, 3):
        raise ValueError(f"data must have 1 or 3 channels (mean/std), got {data.in_chans}")
    outputs = getattr(model, "num_classes", None)
    if outputs is not None and outputs != len(data.classes):
        raise ValueError(
            f"the model has {outputs} outputs but data has {len(data.classes)} classes"
        )
    preprocess = v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize(data.image_size),
            v2.CenterCrop(data.image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(data.mean, data.std),
        ]
    )
    name = getattr(data, "name", "") or "own"
    return ImageClassifier(
        model=model,
        preprocess=preprocess,
        classes=list(data.classes),
        mean=tuple(data.mean),
        std=tuple(data.std),
        description=f"the course's {name} model ({len(data.classes)} classes, "
        f"{data.image_size}x{data.image_size} inputs)",
        image_mode="L" if data.in_chans == 1 else "RGB",
    )


def save_image(image: Tensor, path: str | os.PathLike) -> Path:
    """Save one uint8 image (C, H, W), C = 1 or 3, as a file whose suffix sets the format.

    Returns the path. A lossless format (PNG) keeps the pixels exactly.
    """
    if not isinstance(image, Tensor) or image.dtype != torch.uint8:
        raise ValueError(
            "image must be a uint8 tensor (C, H, W) with values 0-255, got "
            + (f"{image.dtype}" if isinstance(image, Tensor) else type(image).__name__)
        )
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image must be (C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
    path = Path(path).expanduser()
    array = image.detach().cpu().permute(1, 2, 0).numpy()  # (H, W, C), as Pillow wants it
    if array.shape[-1] == 1:
        array = array[..., 0]  # a grey image is (H, W) to Pillow
    Image.fromarray(np.ascontiguousarray(array)).save(path)
    return path
