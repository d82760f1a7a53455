"""The notebook 03 self-checks pass on right answers and fail on wrong ones."""

from __future__ import annotations

import torch

from helpers.check import FAIL, PASS, TODO, nb03


def test_layer3_bottleneck_parameters() -> None:
    convs = 1024 * 256 + 9 * 256 * 256 + 256 * 1024
    assert nb03.layer3_bottleneck_parameters(convs + 2 * (256 + 256 + 1024)).status == PASS
    assert nb03.layer3_bottleneck_parameters(convs).status == FAIL
    assert nb03.layer3_bottleneck_parameters(None).status == TODO


def right_macs(in_ch: int, planes: int, size: int, stride: int, stride_in_1x1: bool) -> int:
    out = -(-size // stride)  # ceil: a stride-2 conv with "same" padding
    first = out if stride_in_1x1 else size
    return (
        first * first * in_ch * planes  # conv1, 1x1
        + out * out * planes * planes * 9  # conv2, 3x3
        + out * out * planes * 4 * planes  # conv3, 1x1 expanding by 4
    )


def test_bottleneck_macs() -> None:
    assert nb03.bottleneck_macs(right_macs).status == PASS

    def stride_ignored(in_ch, planes, size, stride, stride_in_1x1):
        return right_macs(in_ch, planes, size, 1, stride_in_1x1)

    result = nb03.bottleneck_macs(stride_ignored)
    assert result.status == FAIL and "torch.utils.flop_counter counts" in result.message
    assert "too high by" in result.message  # which way it is off, not the count itself
    assert nb03.bottleneck_macs(lambda *args: "many").status == FAIL  # not a crash report


def test_wide_resnet_ratios() -> None:
    import torchvision

    from helpers.inspection import count_flops, count_parameters

    with torch.device("meta"):
        wide, base = torchvision.models.wide_resnet50_2(), torchvision.models.resnet50()
    params = count_parameters(wide)["total"] / count_parameters(base)["total"]
    macs = count_flops(wide) / count_flops(base)
    assert nb03.wide_resnet_ratios(params, macs).status == PASS
    assert nb03.wide_resnet_ratios(4.0, 4.0).status == FAIL  # "twice as wide" squared
    assert nb03.wide_resnet_ratios(params, params).status == FAIL


def test_resnet26_parameters() -> None:
    from helpers.models import Bottleneck, ResNet

    with torch.device("meta"):
        right = sum(p.numel() for p in ResNet(Bottleneck, [2, 2, 2, 2]).parameters())
    assert nb03.resnet26_parameters(right).status == PASS
    assert nb03.resnet26_parameters(right - 2048 * 1000 - 1000).status == FAIL  # without fc
