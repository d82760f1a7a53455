"""Self-checks for notebook 03 (ResNet50 and the bottleneck block)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision

from helpers.check.core import exercise, expect, expect_close, how_far_off
from helpers.inspection import count_flops, count_parameters
from helpers.models import Bottleneck, ResNet, resnet50


@exercise("Parameters of one ResNet50 layer3 bottleneck")
def layer3_bottleneck_parameters(answer: int) -> str:
    """The learner's hand count of ``resnet50().layer3[1]`` (1024 -> 256 -> 256 -> 1024)."""
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

    cases = [(256, 64, 56, 1), (256, 128, 56, 2), (512, 256, 28, 2), (1024, 512, 14, 2)]
    for in_ch, planes, size, stride in cases:
        for v1 in (False, True):
            with torch.device("meta"):
                block = Bottleneck(in_ch, planes, stride, shortcut=None, stride_in_1x1=v1)
            expected = count_flops(block, (1, in_ch, size, size))
            call = f"fn({in_ch}, {planes}, {size}, {stride}, stride_in_1x1={v1})"
            got = fn(in_ch, planes, size, stride, v1)
            expect(
                isinstance(got, int) and not isinstance(got, bool),
                f"{call} should return an int, got {type(got).__name__} {got!r}",
            )
            expect(
                got == expected,
                f"{call} returned {got:,}: {how_far_off(got, expected)} of what "
                "torch.utils.flop_counter counts",
            )
    return "matches torch.utils.flop_counter for v1 and v1.5, with and without stride"


@exercise("Wide ResNet-50-2 against ResNet50")
def wide_resnet_ratios(params_ratio: float, macs_ratio: float) -> str:
    """The learner's measured ratios wide_resnet50_2 / resnet50: parameters and multiply-adds."""
    with torch.device("meta"):
        wide, base = torchvision.models.wide_resnet50_2(), torchvision.models.resnet50()
    expected_params = count_parameters(wide)["total"] / count_parameters(base)["total"]
    expected_macs = count_flops(wide) / count_flops(base)
    expect_close(params_ratio, expected_params, "your parameter ratio", rtol=0.01, atol=0.0)
    expect_close(macs_ratio, expected_macs, "your multiply-add ratio", rtol=0.01, atol=0.0)
    return (
        f"{expected_params:.2f}x the parameters, {expected_macs:.2f}x the multiply-adds: "
        "less than 4x, because only the 3x3 convs and the 1x1s around them widen"
    )


@exercise("Parameters of a bottleneck ResNet-26")
def resnet26_parameters(answer: int) -> str:
    """The learner's count for ``models.ResNet(models.Bottleneck, [2, 2, 2, 2])``."""
    with torch.device("meta"):
        expected = sum(p.numel() for p in ResNet(Bottleneck, [2, 2, 2, 2]).parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return f"{answer:,} parameters (ResNet34 has 21,797,672 and ResNet50 25,557,032)"
