"""inspection.calibration and measurement.precision: checked against hand computations."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from helpers import inspection, measurement, plots


def test_ece_of_a_calibrated_and_an_overconfident_model() -> None:
    # 100 predictions at confidence 0.8 of which 80 right: calibrated, ECE 0.
    logits = torch.tensor([[math.log(0.8), math.log(0.2)]]).repeat(100, 1)
    labels = torch.zeros(100, dtype=torch.long)
    labels[80:] = 1
    assert inspection.expected_calibration_error(logits, labels) == pytest.approx(0.0, abs=1e-6)
    # The same confidence with only 50 right: overconfident by 0.3.
    labels[50:] = 1
    assert inspection.expected_calibration_error(logits, labels) == pytest.approx(0.3, abs=1e-6)


def test_reliability_table_bins_and_counts() -> None:
    probs = torch.tensor([[0.95, 0.05], [0.55, 0.45], [0.6, 0.4], [0.1, 0.9]])
    table = inspection.reliability_table(probs.log(), torch.tensor([0, 1, 0, 1]), bins=5)
    assert table["count"].tolist() == [0, 0, 2, 0, 2]  # (0.4,0.6]: 0.55, 0.6; (0.8,1]: 0.95, 0.9
    assert table.loc[2, "accuracy"] == pytest.approx(0.5)
    assert table.loc[2, "confidence"] == pytest.approx(0.575)
    assert table.loc[4, "accuracy"] == pytest.approx(1.0)
    assert math.isnan(table.loc[0, "accuracy"])


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="logits must be a"):
        inspection.expected_calibration_error(torch.zeros(5), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must"):
        inspection.reliability_table(torch.zeros(5, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        inspection.reliability_table(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="bins must be an int >= 1"):
        inspection.reliability_table(torch.zeros(2, 3), torch.tensor([0, 1]), bins=0)


def test_confidence_summary_and_logit_gap() -> None:
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 1.0, 2.0]])
    summary = inspection.confidence_summary(logits, torch.tensor([0, 1]))
    assert summary["accuracy"] == pytest.approx(0.5)
    assert summary["logit gap"] == pytest.approx((3.0 + 1.5) / 2)


def test_smoothed_optimum_gap_minimises_torch_loss() -> None:
    gap = inspection.smoothed_optimum_gap(0.1, 10)
    assert gap == pytest.approx(math.log(0.91 / 0.01))

    def loss(g: float) -> float:
        logits = torch.zeros(1, 10, dtype=torch.float64)
        logits[0, 0] = g
        target = torch.zeros(1, dtype=torch.long)
        return nn.functional.cross_entropy(logits, target, label_smoothing=0.1).item()

    assert loss(gap) < loss(gap - 0.05) and loss(gap) < loss(gap + 0.05)
    assert inspection.smoothed_optimum_gap(0.0, 10) == math.inf
    with pytest.raises(ValueError, match="epsilon"):
        inspection.smoothed_optimum_gap(1.0, 10)


def test_collect_logits_and_diagram() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    batches = [(torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])) for _ in range(2)]
    model.train()
    logits, labels = inspection.collect_logits(model, batches)
    assert logits.shape == (8, 3) and labels.shape == (8,)
    assert model.training  # the mode is restored
    ax = plots.reliability_diagram(inspection.reliability_table(logits, labels, bins=4))
    assert len(ax.patches) >= 1
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="no batches"):
        inspection.collect_logits(model, [])


def test_bf16_halves_saved_activations_of_a_conv_net() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.ReLU(), nn.Conv2d(8, 8, 3))
    x = torch.randn(2, 3, 16, 16)
    fp32 = measurement.saved_activation_bytes(model, x)
    bf16 = measurement.saved_activation_bytes(model, x, amp="bf16")
    # fp32 keeps x (2·3·16·16) and the ReLU output (2·8·14·14) at 4 bytes each.
    assert fp32 == 4 * (2 * 3 * 16 * 16 + 2 * 8 * 14 * 14)
    assert bf16 < 0.75 * fp32
