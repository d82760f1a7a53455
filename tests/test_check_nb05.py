"""The notebook 05 self-checks pass on right answers and fail on wrong ones."""

from __future__ import annotations

import torch
from torch import nn

from helpers.check import FAIL, PASS, TODO, nb05


def test_spatial_attention_parameters() -> None:
    assert nb05.spatial_attention_parameters(2 * 7 * 7 + 2).status == PASS
    assert nb05.spatial_attention_parameters(2 * 7 * 7).status == FAIL  # BN forgotten
    assert nb05.spatial_attention_parameters(...).status == TODO


class PaperSE(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // 16, 1)
        self.fc2 = nn.Conv2d(channels // 16, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class TimmWidthSE(PaperSE):
    def __init__(self, channels: int) -> None:
        nn.Module.__init__(self)
        hidden = max(8, channels // 16)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)


class MaxPoolSE(PaperSE):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # squeezes with max, not the mean
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.amax((2, 3), keepdim=True)))))


def test_paper_se() -> None:
    assert nb05.paper_se(PaperSE).status == PASS
    result = nb05.paper_se(TimmWidthSE)
    assert result.status == FAIL and "hidden width 8" in result.message
    result = nb05.paper_se(MaxPoolSE)
    assert result.status == FAIL and "differs from the reference" in result.message


def test_last_stage_se_parameters() -> None:
    from helpers.models import resnet20

    right = sum(p.numel() for p in resnet20(attention=(None, None, "se")).parameters())
    everywhere = sum(p.numel() for p in resnet20(attention="se").parameters())
    assert nb05.last_stage_se_parameters(right).status == PASS
    assert nb05.last_stage_se_parameters(everywhere).status == FAIL
