"""The notebook 04 self-checks pass on right answers and fail on wrong ones."""

from __future__ import annotations

import itertools
import math

import torch

from helpers.check import FAIL, PASS, TODO, nb04


def test_deep_stem_parameters() -> None:
    convs = 9 * (3 * 32 + 32 * 32 + 32 * 64)
    bns = 2 * (32 + 32 + 64)
    assert nb04.deep_stem_parameters(convs + bns).status == PASS
    assert nb04.deep_stem_parameters(convs).status == FAIL  # BN forgotten
    assert nb04.deep_stem_parameters(7 * 7 * 3 * 64 + 128).status == FAIL  # the old stem
    assert nb04.deep_stem_parameters(...).status == TODO


def test_optimal_gap() -> None:
    def right(epsilon: float, k: int) -> float:
        return math.log((1 - epsilon + epsilon / k) / (epsilon / k))

    def uniform_share_forgotten(epsilon: float, k: int) -> float:
        return math.log((1 - epsilon) / (epsilon / (k - 1)))

    assert nb04.optimal_gap(right).status == PASS
    result = nb04.optimal_gap(uniform_share_forgotten)
    assert result.status == FAIL and "smallest at a gap" in result.message


def right_ece(confidence: torch.Tensor, correct: torch.Tensor, bins: int) -> float:
    edges = torch.linspace(0, 1, bins + 1)
    total = 0.0
    for low, high in itertools.pairwise(edges):
        mask = (confidence > low) & (confidence <= high)
        if mask.any():
            gap = correct[mask].float().mean() - confidence[mask].mean()
            total += mask.float().mean().item() * abs(gap.item())
    return total


def test_ece() -> None:
    assert nb04.ece(right_ece).status == PASS

    def unweighted(confidence, correct, bins):  # mean gap over bins, not weighted by size
        edges = torch.linspace(0, 1, bins + 1)
        gaps = []
        for low, high in itertools.pairwise(edges):
            mask = (confidence > low) & (confidence <= high)
            if mask.any():
                gaps.append(abs(correct[mask].float().mean() - confidence[mask].mean()).item())
        return sum(gaps) / len(gaps)

    assert nb04.ece(unweighted).status == FAIL


def test_cosine_lr() -> None:
    def right(step: int, total: int, base: float) -> float:
        return base * (1 + math.cos(math.pi * step / total)) / 2

    def linear(step: int, total: int, base: float) -> float:
        return base * (1 - step / total)

    assert nb04.cosine_lr(right).status == PASS
    assert nb04.cosine_lr(linear).status == FAIL
