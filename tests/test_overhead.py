"""helpers.overhead: side-by-side training-step times."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.overhead import train_step_times


def net(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(width, 2),
    )  # fmt: skip


def test_every_model_is_timed_and_the_bigger_one_is_slower() -> None:
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 2, (8,))
    times = train_step_times({"small": lambda: net(2), "big": lambda: net(256)}, x, y, repeats=5)
    assert list(times) == ["small", "big"]
    assert all(t > 0 for t in times.values())
    assert times["big"] > times["small"]  # 128x the conv work


def test_the_models_are_trained() -> None:
    model = net(4)
    before = [p.detach().clone() for p in model.parameters()]
    train_step_times({"m": lambda: model}, torch.randn(2, 3, 8, 8), torch.tensor([0, 1]), repeats=1)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_bad_arguments_are_errors() -> None:
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="non-empty dict"):
        train_step_times({}, x, y)
    with pytest.raises((ValueError, TypeError), match="repeats"):
        train_step_times({"m": lambda: net(2)}, x, y, repeats=0)
