"""helpers.inspection.attention: per-class means and the between-class variance share of gates."""

from __future__ import annotations

import math

import pytest
import torch

from helpers.inspection import class_means, class_specificity, shuffled_specificity


def test_class_means_averages_each_class() -> None:
    weights = torch.tensor([[0.0, 1.0], [2.0, 3.0], [10.0, 10.0]])
    labels = torch.tensor([0, 0, 2])
    means = class_means(weights, labels, num_classes=4)
    assert means.shape == (4, 2)
    assert torch.equal(means[0], torch.tensor([1.0, 2.0]))
    assert torch.equal(means[2], torch.tensor([10.0, 10.0]))
    assert math.isnan(means[1, 0].item()) and math.isnan(means[3, 1].item())  # no images


def test_specificity_is_one_when_the_class_decides_the_weights() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    weights = torch.tensor([[0.1, 0.9], [0.1, 0.9], [0.5, 0.5], [0.5, 0.5], [0.9, 0.2], [0.9, 0.2]])
    assert class_specificity(weights, labels) == pytest.approx(1.0)


def test_specificity_is_zero_when_classes_share_their_mean() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    weights = torch.tensor([[0.2], [0.8], [0.8], [0.2]])  # both class means are 0.5
    assert class_specificity(weights, labels) == pytest.approx(0.0)
    assert class_specificity(torch.full((4, 3), 0.5), labels) == 0.0  # gates never vary


def test_specificity_matches_a_one_way_anova_by_hand() -> None:
    g = torch.Generator().manual_seed(0)
    weights, labels = torch.rand(30, 5, generator=g), torch.randint(0, 3, (30,), generator=g)
    grand = weights.mean(0)
    between = sum(
        (labels == k).sum() * (weights[labels == k].mean(0) - grand).pow(2).sum() for k in range(3)
    )
    total = (weights - grand).pow(2).sum()
    assert class_specificity(weights, labels) == pytest.approx((between / total).item(), rel=1e-6)


def test_shuffled_labels_give_about_the_chance_level() -> None:
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(10).repeat(40)  # 400 images, 10 classes
    weights = (
        torch.rand(400, 8, generator=g) + 0.5 * torch.nn.functional.one_hot(labels, 8 + 2)[:, :8]
    )
    chance = shuffled_specificity(weights, labels, repeats=10)
    assert chance == pytest.approx(9 / 399, abs=0.015)  # (K - 1) / (N - 1)
    assert class_specificity(weights, labels) > 5 * chance


@pytest.mark.parametrize(
    ("weights", "labels", "message"),
    [
        (torch.rand(4), torch.zeros(4, dtype=torch.int64), r"\(N, C\)"),
        (torch.rand(4, 2), torch.zeros(3, dtype=torch.int64), "4 rows of weights but 3 labels"),
        (torch.rand(4, 2), torch.zeros(4), "int64"),
        (torch.rand(1, 2), torch.zeros(1, dtype=torch.int64), "at least 2"),
    ],
)
def test_bad_input_is_named(weights, labels, message) -> None:
    with pytest.raises(ValueError, match=message):
        class_specificity(weights, labels)


def test_labels_beyond_num_classes_are_an_error() -> None:
    with pytest.raises(ValueError, match="beyond num_classes=2"):
        class_means(torch.rand(3, 2), torch.tensor([0, 1, 2]), num_classes=2)
