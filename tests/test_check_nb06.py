"""The notebook 06 self-checks pass on right answers and fail on wrong ones."""

from __future__ import annotations

import torch

from helpers.check import FAIL, PASS, TODO, nb06
from helpers.transfer import identity_init_attention


def test_trainable_after_freeze() -> None:
    # layer4: block 1 (3x3 256->512, 3x3 512->512, 1x1 projection, 3 BN) + block 2
    block1 = 9 * 256 * 512 + 9 * 512 * 512 + 256 * 512 + 3 * 2 * 512
    block2 = 2 * 9 * 512 * 512 + 2 * 2 * 512
    right = block1 + block2 + 512 * 10 + 10
    assert nb06.trainable_after_freeze(right).status == PASS
    assert nb06.trainable_after_freeze(right - 5130).status == FAIL  # forgot the head
    assert nb06.trainable_after_freeze(...).status == TODO


def test_se_identity_init() -> None:
    def bias_scheme(model):  # gates pushed to ~1 by a large bias: close enough
        for module in model.modules():
            if hasattr(module, "se") and module.se is not None:
                torch.nn.init.zeros_(module.se.fc2.weight)
                torch.nn.init.constant_(module.se.fc2.bias, 12.0)

    assert nb06.se_identity_init(lambda m: identity_init_attention(m)).status == PASS
    assert nb06.se_identity_init(bias_scheme).status == PASS
    result = nb06.se_identity_init(lambda m: None)
    assert result.status == FAIL and "does not start as the identity" in result.message


def test_contrast() -> None:
    def right(images, c):
        x = images.float() / 255
        mean = x.mean(dim=(2, 3), keepdim=True)
        return (((x - mean) * c + mean).clamp(0, 1) * 255).round().to(torch.uint8)

    def global_mean(images, c):  # one mean over the whole batch: wrong
        x = images.float() / 255
        return (((x - x.mean()) * c + x.mean()).clamp(0, 1) * 255).round().to(torch.uint8)

    assert nb06.contrast(right).status == PASS
    result = nb06.contrast(global_mean)
    assert result.status == FAIL and "grey levels" in result.message
