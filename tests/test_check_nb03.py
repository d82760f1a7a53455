"""The notebook 03 self-checks pass on right answers and fail on wrong ones."""

from __future__ import annotations

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
