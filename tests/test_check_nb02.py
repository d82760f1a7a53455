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


def test_separable_weights() -> None:
    assert nb02.separable_weights(256 * 9 + 256 * 256).status == PASS
    assert nb02.separable_weights(256 * 256 * 9).status == FAIL
