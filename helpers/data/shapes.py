"""A procedurally generated image set: one shape per image on a cluttered background.

Each image holds one object (circle, ring, square, diamond, triangle or cross) at a random
position, size, colour and small rotation, drawn over a background of colour gradients, soft
blobs, random lines and pixel noise. The object's bounding box comes with every image, so
Grad-CAM maps can be checked against where the object really is.

Everything is drawn with whole-batch tensor arithmetic on signed distance functions (no
per-pixel or per-image Python loop): 10,000 images of 32x32 take about a second on a CPU.
The same seed always gives the same images.

    make_shapes(n)            # an ImageTensorSet: images, labels, boxes
    load_shapes()             # train/val/test DataSplits, as helpers.data.load("shapes")
    load_quick_shapes()       # quick mode's easier set: 4 classes, less clutter, learnt in seconds

Notebook 07 trains a small ResNet on a CPU in seconds on the quick set; on the full six-class
set with three blobs and three lines of clutter it would learn too little for its maps to mean
anything.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torchvision.ops import masks_to_boxes

from helpers.data.core import (
    DataSplits,
    ImageTensorSet,
    channel_stats,
    describe_sizes,
    one_cpu_thread,
)
from helpers.validate import check_int

__all__ = [
    "QUICK_SHAPE_CLASSES",
    "SHAPE_CLASSES",
    "load_quick_shapes",
    "load_shapes",
    "make_shapes",
]

SHAPE_CLASSES: tuple[str, ...] = ("circle", "ring", "square", "diamond", "triangle", "cross")

_MAX_ROTATION = math.radians(15)  # small enough that a square never looks like a diamond
_CHUNK = 2048  # images drawn at once: bounds memory to a few tens of MB at 32x32


def _signed_distance(shape: str, u: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance in pixels from each pixel to the shape's edge (negative inside).

    u, v: (B, H, W) pixel coordinates in the object's rotated frame, origin at its centre;
    r: (B, 1, 1) the object's radius (every shape fits in the circle of radius r).
    """
    if shape == "circle":
        return torch.sqrt(u * u + v * v) - r
    if shape == "ring":  # a band from 0.44 r to r
        return (torch.sqrt(u * u + v * v) - 0.72 * r).abs() - 0.28 * r
    if shape == "square":  # half side 0.7 r: the corners stay inside radius r when rotated
        return torch.maximum(u.abs(), v.abs()) - 0.7 * r
    if shape == "diamond":
        return (u.abs() + v.abs() - r) / math.sqrt(2)
    if shape == "triangle":  # equilateral, apex up: the inside of three half-planes
        c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
        edges = torch.stack([v, c * u - s * v, -c * u - s * v])
        return edges.amax(dim=0) - 0.5 * r
    if shape == "cross":  # a "+" of two bars, half-width 0.28 r
        w = 0.28 * r
        bar_h = torch.maximum(u.abs() - r, v.abs() - w)
        bar_v = torch.maximum(u.abs() - w, v.abs() - r)
        return torch.minimum(bar_h, bar_v)
    raise ValueError(f"unknown shape {shape!r}; known shapes: {', '.join(SHAPE_CLASSES)}")


def _uniform(g: torch.Generator, shape: Sequence[int], low: float, high: float) -> torch.Tensor:
    return torch.rand(*shape, generator=g) * (high - low) + low


def _background(g: torch.Generator, b: int, size: int, n_blobs: int, n_lines: int) -> torch.Tensor:
    """Cluttered backgrounds (B, 3, S, S) in [0, 1]: gradient + soft blobs + lines."""
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    xs, ys = xs / size, ys / size  # (S, S) in [0, 1]

    base = torch.rand(b, 3, 1, 1, generator=g)
    angle = _uniform(g, (b, 1, 1, 1), 0, 2 * math.pi)
    slope = _uniform(g, (b, 1, 1, 1), -0.35, 0.35)
    img = base + slope * ((xs - 0.5) * torch.cos(angle) + (ys - 0.5) * torch.sin(angle))

    for _ in range(n_blobs):  # soft coloured blobs, some as large as the object
        centre = torch.rand(b, 2, 1, 1, generator=g)
        sigma = _uniform(g, (b, 1, 1, 1), 0.06, 0.22)
        d2 = (xs - centre[:, :1]) ** 2 + (ys - centre[:, 1:]) ** 2
        alpha = _uniform(g, (b, 1, 1, 1), 0.3, 0.8) * torch.exp(-d2 / (2 * sigma * sigma))
        img = img * (1 - alpha) + torch.rand(b, 3, 1, 1, generator=g) * alpha

    for _ in range(n_lines):  # thin straight lines in random colours, across the whole image
        point = torch.rand(b, 2, 1, 1, generator=g)
        theta = _uniform(g, (b, 1, 1, 1), 0, math.pi)
        width = _uniform(g, (b, 1, 1, 1), 0.6, 1.6)  # pixels
        dist = (
            (xs - point[:, :1]) * torch.sin(theta) - (ys - point[:, 1:]) * torch.cos(theta)
        ).abs()
        alpha = (width / 2 + 0.5 - dist * size).clamp(0, 1) * _uniform(g, (b, 1, 1, 1), 0.5, 1.0)
        img = img * (1 - alpha) + torch.rand(b, 3, 1, 1, generator=g) * alpha
    return img


def _draw_chunk(
    g: torch.Generator,
    labels: torch.Tensor,
    classes: Sequence[str],
    size: int,
    noise: float,
    n_blobs: int,
    n_lines: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw len(labels) images; returns uint8 images (B, 3, S, S) and boxes (B, 4)."""
    b = len(labels)
    img = _background(g, b, size, n_blobs, n_lines)

    # Object geometry: radius 18-36 % of the image, fully inside it, rotated by at most 15 degrees.
    r = _uniform(g, (b, 1, 1), 0.18 * size, 0.36 * size)
    margin = r + 1.0
    cx = margin + torch.rand(b, 1, 1, generator=g) * (size - 2 * margin)
    cy = margin + torch.rand(b, 1, 1, generator=g) * (size - 2 * margin)
    rot = _uniform(g, (b, 1, 1), -_MAX_ROTATION, _MAX_ROTATION)
    # The object's colour is drawn away from the background's base colour in every channel,
    # so it is visible; blobs and lines can still match it, which keeps the task non-trivial.
    colour = torch.rand(b, 3, generator=g)
    base = img.mean(dim=(2, 3))
    colour = torch.where((colour - base).abs() < 0.3, (base + 0.5) % 1.0, colour)

    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32),
        torch.arange(size, dtype=torch.float32),
        indexing="ij",
    )
    dx, dy = xs - cx, ys - cy  # (B, S, S), pixel centres at integer coordinates
    u = dx * torch.cos(rot) + dy * torch.sin(rot)
    v = -dx * torch.sin(rot) + dy * torch.cos(rot)

    sdf = torch.empty(b, size, size)
    for k, shape in enumerate(classes):  # one vectorised pass per class, not per image
        idx = (labels == k).nonzero(as_tuple=True)[0]
        if len(idx):
            sdf[idx] = _signed_distance(shape, u[idx], v[idx], r[idx])
    coverage = (0.5 - sdf).clamp(0, 1).unsqueeze(1)  # anti-aliased edge, 1 px wide

    img = img * (1 - coverage) + colour[:, :, None, None] * coverage
    img = img + noise * torch.randn(img.shape, generator=g)
    images = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    boxes = masks_to_boxes(coverage[:, 0] >= 0.5)
    return images, boxes


def make_shapes(
    n: int,
    *,
    image_size: int = 32,
    seed: int = 0,
    classes: Sequence[str] = SHAPE_CLASSES,
    noise: float = 0.05,
    n_blobs: int = 3,
    n_lines: int = 3,
) -> ImageTensorSet:
    """Draw ``n`` shape images with their class labels and object boxes.

    Returns an ImageTensorSet: images (n, 3, S, S) uint8, labels (n,) int64 indexing
    ``classes``, boxes (n, 4) float ``(x_min, y_min, x_max, y_max)`` inclusive pixel indices.
    Classes are balanced in expectation (drawn uniformly). Deterministic for a given seed.
    """
    check_int("n", n, 1)
    check_int("image_size (objects need room)", image_size, 16)
    check_int("n_blobs", n_blobs, 0)
    check_int("n_lines", n_lines, 0)
    classes = _check_classes(classes)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")

    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(classes), (n,), generator=g)
    images, boxes = [], []
    with one_cpu_thread():
        for start in range(0, n, _CHUNK):
            img, box = _draw_chunk(
                g, labels[start : start + _CHUNK], classes, image_size, noise, n_blobs, n_lines
            )
            images.append(img)
            boxes.append(box)
    return ImageTensorSet(torch.cat(images), labels, torch.cat(boxes))


def _check_classes(classes: Sequence[str]) -> list[str]:
    """``classes`` as a list, or ValueError unless they are 2+ distinct names of SHAPE_CLASSES."""
    classes = list(classes)
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if unknown or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(
            f"classes must be 2+ distinct names from {SHAPE_CLASSES}, got {tuple(classes)}"
        )
    return classes


def load_shapes(
    *,
    train_size: int | None = None,
    val_size: int = 2000,
    test_size: int = 2000,
    seed: int = 0,
    image_size: int = 32,
    classes: Sequence[str] = SHAPE_CLASSES,
    n_blobs: int = 3,
    n_lines: int = 3,
) -> DataSplits:
    """The procedurally drawn shapes set (offline), with object boxes for Grad-CAM checks.

    Default sizes 10,000/2,000/2,000. Each split is drawn from its own seed derived from
    ``seed``, so changing one split's size never changes the images of another. ``n_blobs``
    and ``n_lines`` set the clutter per image (:func:`make_shapes`).
    """
    sizes = {"train": 10_000 if train_size is None else train_size, "val": val_size}
    sizes["test"] = test_size
    for split, size in sizes.items():
        check_int(f"{split}_size (shapes is drawn, not split: a count)", size, 0)
    sets: dict[str, ImageTensorSet | None] = {}
    for k, (split, size) in enumerate(sizes.items()):
        sets[split] = (
            make_shapes(
                size,
                image_size=image_size,
                seed=seed * 3 + k,
                classes=classes,
                n_blobs=n_blobs,
                n_lines=n_lines,
            )
            if size
            else None
        )
    if sets["train"] is None:
        raise ValueError("train_size must be >= 1")
    mean, std = channel_stats(sets["train"].images)
    return DataSplits(
        train=sets["train"],
        val=sets["val"],
        test=sets["test"],
        classes=list(classes),
        num_classes=len(classes),
        mean=mean,
        std=std,
        image_size=image_size,
        source=f"shapes (procedurally generated, offline), {image_size}x{image_size}, "
        f"{describe_sizes(sets['train'], sets['val'], sets['test'])} train/val/test (seed {seed})",
        flip=True,
        name="shapes",
    )


QUICK_SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def load_quick_shapes(
    *,
    train_size: int = 2500,
    test_size: int = 200,
    seed: int = 0,
    classes: Sequence[str] = QUICK_SHAPE_CLASSES,
    n_blobs: int = 1,
    n_lines: int = 1,
    image_size: int = 32,
) -> DataSplits:
    """The easy shapes set of quick mode as DataSplits: train and test, no validation split.

    :func:`load_shapes` with less clutter and no validation split:
    ``train.images`` is (train_size, 3, S, S) uint8 and ``test.images`` (test_size, 3, S, S),
    with labels (N,) int64 and object boxes (N, 4) ``(x_min, y_min, x_max, y_max)``; mean and
    std are the training images' channel statistics.
    """
    check_int("train_size", train_size, 1)
    check_int("test_size", test_size, 1)
    check_int("seed", seed, 0)
    classes = _check_classes(classes)
    splits = load_shapes(
        train_size=train_size,
        val_size=0,
        test_size=test_size,
        seed=seed,
        image_size=image_size,
        classes=classes,
        n_blobs=n_blobs,
        n_lines=n_lines,
    )
    return dataclasses.replace(
        splits,
        source=f"shapes, quick mode: {len(classes)} classes, {_plural(n_blobs, 'blob')} and "
        f"{_plural(n_lines, 'line')} of clutter (3 and 3 in the full set), "
        f"{image_size}x{image_size}, {train_size:,}/{test_size:,} train/test (seed {seed})",
    )
