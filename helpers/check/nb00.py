"""Self-checks for notebook 00 (set-up and tour)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms.v2 import functional as TF

from helpers.check.core import exercise, expect, expect_close


@exercise("Parameters of ResNet-20's stem")
def stem_parameters(answer: int) -> str:
    """The learner's hand count of ResNet-20's first conv + BatchNorm parameters."""
    from helpers.models import resnet20

    model = resnet20(num_classes=10)
    expected = sum(p.numel() for m in (model.conv1, model.bn1) for p in m.parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return f"{answer:,} = 3·3·3·16 conv weights (no bias) + 16 BN scales + 16 BN shifts"


@exercise("Normalising a uint8 batch")
def normalize(
    fn: Callable[[torch.Tensor, Sequence[float], Sequence[float]], torch.Tensor],
) -> str:
    """The learner's ``fn(images_uint8, mean, std)`` against torchvision's normalize.

    images_uint8: (N, 3, H, W) uint8 in [0, 255]; returns (N, 3, H, W) float32.
    """
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=generator)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # CIFAR-10's statistics
    expected = TF.normalize(images.float() / 255.0, list(mean), list(std))
    result = fn(images, mean, std)
    expect(
        isinstance(result, torch.Tensor) and result.dtype == torch.float32,
        f"return a float32 tensor, got {getattr(result, 'dtype', type(result).__name__)}",
    )
    diff = expect_close(result, expected, "your normalised batch", atol=1e-5)
    return f"matches torchvision.transforms.v2.functional.normalize (max diff {diff:.1e})"
