"""The helpers notebook 04 calls: learning-rate curves from torch's schedulers, and the fp32
against bf16 table. Tiny inputs, CPU only."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from helpers import measurement
from helpers.plots import lr_curve, plot_lr_curves

S = torch.optim.lr_scheduler


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_lr_curve_reads_torchs_cosine_schedule_once_per_epoch() -> None:
    values = lr_curve(lambda opt: S.CosineAnnealingLR(opt, T_max=4), epochs=5, lr=0.4)
    expected = [0.4 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    assert values == pytest.approx(expected, abs=1e-12)


def test_lr_curve_with_warm_up_and_steps() -> None:
    def make(opt: torch.optim.Optimizer) -> S.LRScheduler:
        warmup = S.LinearLR(opt, start_factor=0.5, total_iters=2)
        return S.SequentialLR(opt, [warmup, S.MultiStepLR(opt, [2])], milestones=[2])

    values = lr_curve(make, epochs=6, lr=0.1)
    assert values == pytest.approx([0.05, 0.075, 0.1, 0.1, 0.01, 0.01])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"epochs": 2.5}, "epochs must be an int"),
        ({"lr": 0.0}, "lr must be a positive number"),
        ({"lr": -0.1}, "lr must be a positive number"),
        ({"lr": float("nan")}, "lr must be a positive number"),
    ],
)
def test_lr_curve_rejects_bad_sizes(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lr_curve(lambda opt: S.StepLR(opt, 1), **kwargs)


def test_lr_curve_rejects_what_is_not_a_scheduler_of_its_optimizer() -> None:
    with pytest.raises(ValueError, match=r"must return a torch\.optim\.lr_scheduler"):
        lr_curve(lambda opt: opt, epochs=2)
    other = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="on the optimizer it is given"):
        lr_curve(lambda opt: S.StepLR(other, 1), epochs=2)


def test_plot_lr_curves_draws_a_linear_and_a_log_panel() -> None:
    curves = {"step": [0.1, 0.1, 0.01], "cosine": [0.1, 0.05, 0.0]}
    fig = plot_lr_curves(curves, title="two schedules")
    linear, log = fig.axes
    assert [line.get_label() for line in linear.get_lines()] == ["step", "cosine"]
    assert len(log.get_lines()) == 2 and log.get_yscale() == "log"
    assert list(linear.get_lines()[0].get_ydata()) == [0.1, 0.1, 0.01]
    assert (linear.get_title(), log.get_title()) == ("linear scale", "log scale")
    assert linear.get_xlabel() == "epoch" and linear.get_ylabel() == "learning rate"
    assert fig.get_suptitle() == "two schedules"


@pytest.mark.parametrize(
    ("curves", "message"),
    [
        ({}, "non-empty dict"),
        ([0.1, 0.01], "non-empty dict"),
        ({"empty": []}, "curve 'empty' must be a non-empty sequence"),
        ({"bad": [0.1, -0.1]}, "curve 'bad' has negative or non-finite"),
        ({"bad": [0.1, float("inf")]}, "curve 'bad' has negative or non-finite"),
    ],
)
def test_plot_lr_curves_rejects_bad_curves(curves: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plot_lr_curves(curves)  # type: ignore[arg-type]


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def test_precision_table_has_one_row_per_model_and_consistent_columns() -> None:
    table = measurement.precision_table(
        {"tiny, batch 2": (tiny, 2), "tiny, batch 3": (tiny, 3)},
        "bf16",
        repeats=1,
        image_size=8,
        num_classes=2,
    )
    assert list(table.index) == ["tiny, batch 2", "tiny, batch 3"]
    assert table.index.name == "model"
    assert list(table.columns) == [
        "fp32 ms/step",
        "bf16 ms/step",
        "speed-up bf16/fp32",
        "saved activations fp32 (MB)",
        "saved activations bf16 (MB)",
    ]
    row = table.loc["tiny, batch 2"]
    assert row["fp32 ms/step"] > 0 and row["bf16 ms/step"] > 0
    assert row["speed-up bf16/fp32"] == pytest.approx(row["fp32 ms/step"] / row["bf16 ms/step"])
    # fp32 saves x (2·3·8·8), the ReLU output (2·4·6·6) and the flattened input of the linear
    # layer (a view of the ReLU output: the same storage, counted once), at 4 bytes each.
    assert row["saved activations fp32 (MB)"] == pytest.approx(4 * (2 * 3 * 64 + 2 * 4 * 36) / 1e6)
    assert row["saved activations bf16 (MB)"] > 0


@pytest.mark.parametrize(
    ("bench", "amp", "kwargs", "message"),
    [
        ({}, "bf16", {}, "bench must be a non-empty dict"),
        ({"m": (tiny, 2)}, None, {}, "amp must be the 16-bit type"),
        ({"m": (tiny, 2)}, "fp8", {}, "amp must be the 16-bit type"),
        ({"m": (tiny, 2)}, "fp16", {}, "fp16 autocast needs a CUDA"),
        ({"m": (tiny, 0)}, "bf16", {}, "the batch size of 'm' must be an int >= 1"),
        ({"m": tiny}, "bf16", {}, r"bench\['m'\] must be a \(model builder, batch size\)"),
        ({"m": (tiny, 2)}, "bf16", {"repeats": 0}, "repeats must be an int >= 1"),
        ({"m": (tiny, 2)}, "bf16", {"image_size": 0}, "image_size must be an int >= 1"),
        ({"m": (tiny, 2)}, "bf16", {"num_classes": 1}, "num_classes must be an int >= 2"),
    ],
)
def test_precision_table_rejects_bad_input(bench, amp, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        measurement.precision_table(bench, amp, **kwargs)
