"""Common corruptions generated on the fly, CIFAR-10-C style: noise, blur, contrast loss.

The severities 1-5 use the parameters of Hendrycks & Dietterich's ``make_cifar_c.py``
("Benchmarking Neural Network Robustness to Common Corruptions and Perturbations", ICLR
2019) for 32x32 images:

    gaussian_noise  x + N(0, c^2), clipped      c = 0.04, 0.06, 0.08, 0.09, 0.10
    gaussian_blur   Gaussian filter, sigma = c   c = 0.4, 0.6, 0.7, 0.8, 1.0 (pixels)
    contrast        (x - mean) * c + mean       c = 0.75, 0.5, 0.4, 0.3, 0.15 (mean per
                                                image and channel)

Images are uint8 (N, C, H, W) in and out, as :class:`helpers.data.ImageTensorSet` holds them.
The noise is drawn from a seeded generator, so a table can be repeated exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn
from torchvision.transforms import v2

from helpers.data import DeviceLoader, ImageTensorSet
from helpers.train import evaluate
from helpers.transfer.data import Resized

__all__ = ["CORRUPTIONS", "SEVERITY", "corrupt", "robustness"]

SEVERITY = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
}
CORRUPTIONS = tuple(SEVERITY)


def _noise(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    return x + c * torch.randn(x.shape, generator=g)


def _blur(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    # A kernel of +-4 sigma, odd, as scikit-image's gaussian (truncate=4); edges reflected.
    size = 2 * max(1, round(4 * c)) + 1
    return v2.functional.gaussian_blur(x, [size, size], [c, c])


def _contrast(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * c + mean


_FUNCTIONS: dict[str, Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]] = {
    "gaussian_noise": _noise,
    "gaussian_blur": _blur,
    "contrast": _contrast,
}


def corrupt(images: torch.Tensor, kind: str, severity: int, *, seed: int = 0) -> torch.Tensor:
    """``images`` (N, C, H, W) uint8 with corruption ``kind`` at ``severity`` 1-5 (0: unchanged).

    Returns a new uint8 tensor of the same shape. ``kind`` is one of :data:`CORRUPTIONS`.
    """
    if kind not in SEVERITY:
        raise ValueError(f"unknown corruption {kind!r}; known: {list(CORRUPTIONS)}")
    if isinstance(severity, bool) or severity not in range(6):
        raise ValueError(f"severity must be an int from 0 (clean) to 5, got {severity!r}")
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        raise TypeError("images must be a uint8 tensor (N, C, H, W)")
    if severity == 0:
        return images.clone()
    g = torch.Generator().manual_seed(seed)
    x = images.float() / 255
    x = _FUNCTIONS[kind](x, SEVERITY[kind][severity - 1], g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


@torch.no_grad()
def robustness(
    models: Mapping[str, nn.Module],
    test: ImageTensorSet,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    kinds: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = (1, 3, 5),
    batch_size: int = 256,
    seed: int = 0,
    size: int | None = None,
) -> pd.DataFrame:
    """Accuracy of each model on ``test`` under each corruption and severity (0 = clean).

    The same corrupted images for every model; they are corrupted at their own resolution,
    then resized to ``size`` (if given) as the models expect. Returns a long table with columns
    ``model``, ``corruption``, ``severity``, ``acc``.
    """
    device = next(next(iter(models.values())).parameters()).device
    rows = []
    for kind in kinds:
        for severity in (0, *severities):
            if severity == 0 and kind != kinds[0]:
                continue  # the clean accuracy once, listed under every corruption below
            images = corrupt(test.images, kind, severity, seed=seed)
            loader = DeviceLoader(
                images,
                test.labels,
                batch_size=batch_size,
                mean=mean,
                std=std,
                shuffle=False,
                device=device,
            )
            if size is not None:
                loader = Resized(loader, size)
            for name, model in models.items():
                acc = evaluate(model, loader)["acc"]
                rows.append({"model": name, "corruption": kind, "severity": severity, "acc": acc})
    table = pd.DataFrame(rows)
    clean = table[table["severity"] == 0]
    extra = [clean.assign(corruption=k) for k in kinds[1:]]
    table = pd.concat([table, *extra], ignore_index=True)
    return table.sort_values(["corruption", "model", "severity"], kind="stable", ignore_index=True)
