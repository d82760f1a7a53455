"""Self-checks for notebook 02 (ResNet34, stage by stage)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR

from helpers.check.core import exercise, expect, expect_close
from helpers.inspection import count_flops, shape_table
from helpers.models import SeparableConv2d, resnet18, resnet34


@exercise("Parameters of one ResNet34 layer3 block")
def layer3_block_parameters(answer: int) -> str:
    """The learner's hand count of ``resnet34().layer3[1]`` (a BasicBlock with 256 channels)."""
    with torch.device("meta"):
        block = resnet34().layer3[1]
    expected = sum(p.numel() for p in block.parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return f"{answer:,} = 2 x (3·3·256·256 conv weights + 2·256 BN parameters)"


@exercise("Size of layer4's feature map")
def layer4_size(fn: Callable[[int], int]) -> str:
    """The learner's ``fn(image_size) -> int``: height of ResNet34's layer4 output map."""

    with torch.device("meta"):  # shapes only: no weights to initialise
        model = resnet34()
    for size in (32, 64, 100, 224, 225, 513):
        table = shape_table(model, (1, 3, size, size)).set_index("stage")
        expected = int(table.loc["layer4", "height"])
        got = fn(size)
        expect(
            got == expected,
            f"wrong for a {size}x{size} image (you said {got!r}): follow that size through "
            "the stem and the three stride-2 stages by hand, rounding as a convolution does",
        )
    return "right for 32, 64, 100, 224, 225 and 513 pixels: ceil(size / 32)"


@exercise("Weights of a depthwise-separable 3x3 convolution")
def separable_weights(answer: int) -> str:
    """The learner's count of the weights of ``SeparableConv2d(256, 256)`` (no biases)."""
    expected = sum(p.numel() for p in SeparableConv2d(256, 256).parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return f"{answer:,} = 256·3·3 (depthwise) + 256·256 (pointwise), vs 589,824 for a full 3x3"


@exercise("Parameters of the seed paper's 1x1 head convolution")
def head_conv_parameters(answer: int) -> str:
    """The learner's count for a 512 -> 512 1x1 conv (no bias) followed by a BatchNorm."""
    head = nn.Sequential(nn.Conv2d(512, 512, 1, bias=False), nn.BatchNorm2d(512))
    expected = sum(p.numel() for p in head.parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return f"{answer:,} = 512·512 conv weights + 2·512 BN parameters, about 1.2 % of ResNet34"


@exercise("Learning rate after 3/4 of a cosine schedule")
def cosine_lr(answer: float) -> str:
    """The lr after 75 % of training for a cosine schedule from 0.2 to 0 (no warm-up)."""
    total = 1000
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    schedule = CosineAnnealingLR(optimizer, T_max=total)
    for _ in range(total * 3 // 4):
        optimizer.step()
        schedule.step()
    expected = optimizer.param_groups[0]["lr"]
    expect_close(answer, expected, "your learning rate", rtol=1e-3, atol=1e-6)
    return f"{answer:.4f} = 0.2 · (1 + cos(0.75 π)) / 2, as torch's CosineAnnealingLR"


@exercise("A ResNet18 width that matches ResNet34 at width 0.5")
def matching_width(width: float) -> str:
    """A ``width`` for ``resnet18(stem="cifar")`` within 5 % of the multiply-adds of
    ``resnet34(stem="cifar", width=0.5)`` at 32x32."""

    expect(
        isinstance(width, float | int) and not isinstance(width, bool) and 0 < width <= 4,
        f"answer with a width multiplier such as 0.7, got {width!r}",
    )
    with torch.device("meta"):
        target = count_flops(resnet34(stem="cifar", width=0.5), (1, 3, 32, 32))
        got = count_flops(resnet18(stem="cifar", width=float(width)), (1, 3, 32, 32))
    ratio = got / target
    expect(
        abs(ratio - 1) <= 0.05,
        f"resnet18 at width {width} costs {got / 1e6:.0f} M multiply-adds, "
        f"{ratio:.2f}x ResNet34's {target / 1e6:.0f} M (compute grows with width squared)",
    )
    return f"width {width}: {got / 1e6:.0f} M vs {target / 1e6:.0f} M multiply-adds ({ratio:.3f}x)"
