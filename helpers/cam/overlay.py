"""Maps drawn over their images with the package's ``show_cam_on_image``: one by one, or a grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from pytorch_grad_cam.utils.image import show_cam_on_image

from helpers.images import to_display, to_rgb

__all__ = ["overlay", "plot_cam_grid"]


def overlay(
    images: torch.Tensor,
    cams: Any,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    image_weight: float = 0.5,
) -> np.ndarray:
    """Heat maps over images: (B, C, H, W) and cams (B, H, W) in [0, 1] -> uint8 (B, H, W, 3).

    Normalised images need the ``mean`` and ``std`` used to normalise them. The jet colour
    map and the blend ``image_weight * image + (1 - image_weight) * heat map`` are the
    package's (``pytorch_grad_cam.utils.image.show_cam_on_image``).
    """
    rgb = to_rgb(images, mean, std)
    maps = cams.detach().cpu().numpy() if isinstance(cams, torch.Tensor) else np.asarray(cams)
    if maps.shape != rgb.shape[:3]:
        raise ValueError(f"cams must be (B, H, W) = {rgb.shape[:3]}, got shape {maps.shape}")
    if maps.min() < 0 or maps.max() > 1:
        raise ValueError(f"cams must lie in [0, 1], got [{maps.min():.3g}, {maps.max():.3g}]")
    if not 0 <= image_weight <= 1:
        raise ValueError(f"image_weight must be in [0, 1], got {image_weight!r}")
    return np.stack(
        [
            show_cam_on_image(img, cam.astype(np.float32), use_rgb=True, image_weight=image_weight)
            for img, cam in zip(rgb, maps, strict=True)
        ]
    )


def plot_cam_grid(
    images: torch.Tensor,
    cams: Mapping[str, Any],
    *,
    labels: torch.Tensor | Sequence[int] | None = None,
    preds: torch.Tensor | Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    boxes: torch.Tensor | Sequence[Sequence[float]] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    title: str | None = None,
) -> Figure:
    """Class activation maps as a grid: one row per method (or layer), one column per image.

    images: (N, C, H, W) as for ``helpers.plots.show_images`` (normalised ones need ``mean``
    and ``std``); cams: ``{row name: (N, H, W) maps in [0, 1]}``, drawn over the images with
    :func:`overlay`. The first row shows the images, titled with the predicted class
    and, when wrong, the true one in brackets (green right, red wrong); boxes are drawn there.
    """
    if not isinstance(cams, Mapping) or not cams:
        raise ValueError("cams must be a non-empty dict {row name: (N, H, W) maps}")
    pixels = to_display(images, mean, std)
    n = len(pixels)
    for name, value in (("labels", labels), ("preds", preds), ("boxes", boxes)):
        if value is not None and len(value) != n:
            raise ValueError(f"{n} images but {len(value)} {name}")
    rows = {name: overlay(images, maps, mean=mean, std=std) for name, maps in cams.items()}

    def name_of(label: int) -> str:
        return classes[label] if classes is not None else str(label)

    fig, axes = plt.subplots(
        len(rows) + 1, n, figsize=(1.45 * n + 0.6, 1.5 * (len(rows) + 1) + 0.3),
        squeeze=False, layout="constrained",
    )  # fmt: skip
    grey = pixels.shape[-1] == 1
    for row, (name, drawn) in enumerate([("image", None), *rows.items()]):
        for i, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if drawn is None:
                ax.imshow(pixels[i, :, :, 0] if grey else pixels[i], cmap="gray" if grey else None)
            else:
                ax.imshow(drawn[i])
            if i == 0:
                ax.set_ylabel(name, fontsize="small")
        if drawn is None:
            for i, ax in enumerate(axes[row]):
                if preds is not None:
                    right = labels is None or int(preds[i]) == int(labels[i])
                    text = name_of(int(preds[i]))
                    if not right:
                        text += f" ({name_of(int(labels[i]))})"
                    ax.set_title(text, fontsize="small", color="green" if right else "red")
                elif labels is not None:
                    ax.set_title(name_of(int(labels[i])), fontsize="small")
                if boxes is not None:
                    x0, y0, x1, y1 = (float(v) for v in boxes[i])
                    ax.add_patch(
                        Rectangle(
                            (x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1,
                            fill=False, ec="lime", lw=1.2,
                        )
                    )  # fmt: skip
    if title:
        fig.suptitle(title)
    return fig
