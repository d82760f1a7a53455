"""The notebook 02 self-checks pass on right answers and fail on wrong ones."""

from __future__ import annotations

import math

from helpers.check import FAIL, PASS, TODO, nb02


def test_layer3_block_parameters() -> None:
    assert nb02.layer3_block_parameters(2 * (3 * 3 * 256 * 256 + 2 * 256)).status == PASS
    assert nb02.layer3_block_parameters(2 * 3 * 3 * 256 * 256).status == FAIL  # forgot BN
    assert nb02.layer3_block_parameters(...).status == TODO


def test_layer4_size() -> None:
    assert nb02.layer4_size(lambda size: math.ceil(size / 32)).status == PASS
    result = nb02.layer4_size(lambda size: size // 32)  # floor is wrong for 100 and 225
    assert result.status == FAIL and "100x100" in result.message
    assert "you said 3" in result.message and "4" not in result.message  # no answer given


def test_separable_weights() -> None:
    assert nb02.separable_weights(256 * 9 + 256 * 256).status == PASS
    assert nb02.separable_weights(256 * 256 * 9).status == FAIL


def test_head_conv_parameters() -> None:
    assert nb02.head_conv_parameters(512 * 512 + 2 * 512).status == PASS
    assert nb02.head_conv_parameters(512 * 512 * 9 + 2 * 512).status == FAIL  # a 3x3, not 1x1


def test_cosine_lr() -> None:
    assert nb02.cosine_lr(0.2 * (1 + math.cos(0.75 * math.pi)) / 2).status == PASS
    assert nb02.cosine_lr(0.05).status == FAIL  # linear decay
    assert nb02.cosine_lr(...).status == TODO


def test_matching_width() -> None:
    assert nb02.matching_width(0.72).status == PASS
    assert nb02.matching_width(0.5).status == FAIL  # same width is half the compute
    assert nb02.matching_width(1.0).status == FAIL
    assert nb02.matching_width("0.7").status == FAIL
