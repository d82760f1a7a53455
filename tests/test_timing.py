"""helpers.timing: the shared side-by-side step timer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import timing


def test_steps_take_turns_in_alternating_order_after_warmup():
    calls: list[str] = []
    steps = {name: (lambda n=name: calls.append(n)) for name in ("a", "b", "c")}
    times = timing.median_step_times(steps, torch.device("cpu"), repeats=2, warmup=1)
    assert calls == ["a", "b", "c", "a", "b", "c", "c", "b", "a"]
    assert set(times) == {"a", "b", "c"} and all(t >= 0 for t in times.values())


def test_median_step_times_rejects_bad_arguments():
    with pytest.raises(ValueError, match="repeats"):
        timing.median_step_times({"a": lambda: None}, torch.device("cpu"), repeats=0)
    with pytest.raises(ValueError, match="at least one"):
        timing.median_step_times({}, torch.device("cpu"), repeats=1)


def test_sgd_step_trains_the_model_under_bf16_autocast():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    before = model[1].weight.detach().clone()
    step = timing.sgd_step(model, torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0]), "bf16")
    step()
    assert not torch.equal(before, model[1].weight)
    assert model[1].weight.dtype == torch.float32  # autocast leaves the weights in fp32


def test_autocast_for_names_the_problem():
    with pytest.raises(ValueError, match="fp16 autocast needs a CUDA device"):
        timing.autocast_for(torch.device("cpu"), "fp16")
    with pytest.raises(ValueError, match="amp must be"):
        timing.autocast_for(torch.device("cpu"), "fp8")


# ---- training_step_times: the one step-timing function


def net(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(width, 2),
    )  # fmt: skip


def test_every_model_is_timed_and_the_bigger_one_is_slower() -> None:
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 2, (8,))
    times = timing.training_step_times({"small": net(2), "big": net(256)}, x, y, repeats=5)
    assert list(times) == ["small", "big"]
    assert all(t > 0 for t in times.values())
    assert times["big"] > times["small"]  # 128x the conv work


def test_the_models_are_trained_in_their_precision_and_layout() -> None:
    plain, bf16_cl = net(4), net(4)
    before = [p.detach().clone() for p in plain.parameters()]
    contenders = {
        "fp32": plain,
        "bf16+cl": timing.Contender(bf16_cl, amp="bf16", channels_last=True),
    }
    times = timing.training_step_times(
        contenders, torch.randn(2, 3, 8, 8), torch.tensor([0, 1]), repeats=1
    )
    assert set(times) == {"fp32", "bf16+cl"}
    assert any(not torch.equal(a, b) for a, b in zip(before, plain.parameters(), strict=True))
    assert bf16_cl[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_training_step_times_names_bad_arguments() -> None:
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="non-empty dict"):
        timing.training_step_times({}, x, y)
    with pytest.raises(TypeError, match=r"an nn\.Module or a Contender"):
        timing.training_step_times({"m": lambda: net(2)}, x, y)
    with pytest.raises(ValueError, match="repeats"):
        timing.training_step_times({"m": net(2)}, x, y, repeats=0)
    with pytest.raises(ValueError, match="amp must be"):
        timing.autocast_for(torch.device("cpu"), "fp8")
    with pytest.raises(ValueError, match="fp16 autocast needs a CUDA"):
        timing.autocast_for(torch.device("cpu"), "fp16")
