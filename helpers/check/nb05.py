"""Self-checks for notebook 05 (attention modules: SE and CBAM)."""

from __future__ import annotations

from typing import Any

import torch

from helpers.check.core import exercise, expect, expect_close
from helpers.models import SpatialAttention, SqueezeExcitation, resnet20


@exercise("Parameters of one CBAM spatial-attention module")
def spatial_attention_parameters(answer: int) -> str:
    """The learner's count for ``helpers.models.SpatialAttention()`` (7x7 conv 2 -> 1 + BN)."""
    expected = sum(p.numel() for p in SpatialAttention().parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return (
        f"{answer} = 2·7·7 conv weights (no bias) + 2 BN (scale, shift); 16 bottlenecks x "
        f"{answer} = {16 * answer:,}, the gap between cbam_resnet50 and se_resnet50"
    )


@exercise("SE with the paper's hidden width C / 16")
def paper_se(cls: Any) -> str:
    """The learner's SE class: ``cls(channels)`` with 1x1 convs ``fc1``, ``fc2`` of width C // 16.

    Checked against ``SqueezeExcitation(channels, rd_divisor=1)`` (timm's formula without the
    rounding to multiples of 8) with the learner's weights, on 64 and 256 channels.
    """
    for channels, hidden in ((64, 4), (256, 16)):
        mine = cls(channels)
        expect(isinstance(mine, torch.nn.Module), f"cls({channels}) should be an nn.Module")
        state = mine.state_dict()
        expect(
            {"fc1.weight", "fc2.weight"} <= set(state),
            f"name the layers fc1 and fc2 (timm's names); your state dict has {list(state)}",
        )
        width = state["fc1.weight"].shape[0]
        expect(
            width == hidden,
            f"{channels} channels: hidden width {width}, the paper's C/16 is {hidden}",
        )
        reference = SqueezeExcitation(channels, rd_divisor=1)
        missing, unexpected = reference.load_state_dict(state, strict=False)
        expect(not missing and not unexpected, f"missing {missing}, unexpected {unexpected} keys")
        x = torch.randn(2, channels, 5, 5, generator=torch.Generator().manual_seed(channels))
        with torch.no_grad():
            expect_close(mine.eval()(x), reference.eval()(x), f"output for {channels} channels")
    return "hidden widths 4 and 16, same outputs as SqueezeExcitation(rd_divisor=1)"


@exercise("Parameters of ResNet-20 with SE in the last stage only")
def last_stage_se_parameters(answer: int) -> str:
    """The learner's count for ``resnet20(attention=(None, None, "se"))``."""
    with torch.device("meta"):
        expected = sum(p.numel() for p in resnet20(attention=(None, None, "se")).parameters())
        plain = sum(p.numel() for p in resnet20().parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return f"{answer:,}: {answer - plain:,} more than plain ResNet-20 (3 SE modules on 64 channels)"
