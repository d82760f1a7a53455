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
