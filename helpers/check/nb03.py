"""Self-checks for notebook 03 (ResNet50 and the bottleneck block)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from helpers.check.core import exercise, expect, expect_close


@exercise("Parameters of one ResNet50 layer3 bottleneck")
def layer3_bottleneck_parameters(answer: int) -> str:
    """The learner's hand count of ``resnet50().layer3[1]`` (1024 -> 256 -> 256 -> 1024)."""
    from helpers.models import resnet50

    with torch.device("meta"):  # shapes only: no weights to initialise
        block = resnet50().layer3[1]
    expected = sum(p.numel() for p in block.parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return f"{answer:,} = 1024·256 + 3·3·256·256 + 256·1024 conv weights + 2·(256+256+1024) BN"


@exercise("Multiply-adds of a bottleneck's three convolutions")
def bottleneck_macs(fn: Callable[..., int]) -> str:
    """The learner's ``fn(in_ch, planes, size, stride, stride_in_1x1) -> int``.

    Multiply-adds of conv1, conv2 and conv3 of a Bottleneck (no shortcut) on a size x size
    input, checked against torch.utils.flop_counter for v1 and v1.5 placements.
    """
    from helpers.analysis import count_flops
    from helpers.models import Bottleneck

    cases = [(256, 64, 56, 1), (256, 128, 56, 2), (512, 256, 28, 2), (1024, 512, 14, 2)]
    for in_ch, planes, size, stride in cases:
        for v1 in (False, True):
            with torch.device("meta"):
                block = Bottleneck(in_ch, planes, stride, shortcut=None, stride_in_1x1=v1)
            expected = count_flops(block, (1, in_ch, size, size))
            got = fn(in_ch, planes, size, stride, v1)
            expect(
                got == expected,
                f"fn({in_ch}, {planes}, {size}, {stride}, stride_in_1x1={v1}) returned "
                f"{got!r}, torch.utils.flop_counter counts {expected:,}",
            )
    return "matches torch.utils.flop_counter for v1 and v1.5, with and without stride"
