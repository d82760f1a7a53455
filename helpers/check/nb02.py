"""Self-checks for notebook 02 (ResNet34, stage by stage)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from helpers.check.core import exercise, expect, expect_close


@exercise("Parameters of one ResNet34 layer3 block")
def layer3_block_parameters(answer: int) -> str:
    """The learner's hand count of ``resnet34().layer3[1]`` (a BasicBlock with 256 channels)."""
    from helpers.models import resnet34

    with torch.device("meta"):
        block = resnet34().layer3[1]
    expected = sum(p.numel() for p in block.parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return f"{answer:,} = 2 x (3·3·256·256 conv weights + 2·256 BN parameters)"


@exercise("Size of layer4's feature map")
def layer4_size(fn: Callable[[int], int]) -> str:
    """The learner's ``fn(image_size) -> int``: height of ResNet34's layer4 output map."""
    from helpers.analysis import shape_table
    from helpers.models import resnet34

    with torch.device("meta"):  # shapes only: no weights to initialise
        model = resnet34()
    for size in (32, 64, 100, 224, 225, 513):
        table = shape_table(model, (1, 3, size, size)).set_index("stage")
        expected = int(table.loc["layer4", "height"])
        got = fn(size)
        expect(
            got == expected,
            f"for a {size}x{size} image you said {got!r}, the network gives {expected}",
        )
    return "right for 32, 64, 100, 224, 225 and 513 pixels: ceil(size / 32)"


@exercise("Weights of a depthwise-separable 3x3 convolution")
def separable_weights(answer: int) -> str:
    """The learner's count of the weights of ``SeparableConv2d(256, 256)`` (no biases)."""
    from helpers.models import SeparableConv2d

    expected = sum(p.numel() for p in SeparableConv2d(256, 256).parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return f"{answer:,} = 256·3·3 (depthwise) + 256·256 (pointwise), vs 589,824 for a full 3x3"
