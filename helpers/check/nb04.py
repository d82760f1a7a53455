"""Self-checks for notebook 04 (the improved ResNet50: ResNet-D, label smoothing, cosine, AMP)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from helpers.check.core import exercise, expect, expect_close
from helpers.inspection import expected_calibration_error
from helpers.models import resnet50, resnet50d


@exercise("Parameters of ResNet-50-D's deep stem")
def deep_stem_parameters(answer: int) -> str:
    """The learner's count for the stem of ``resnet50d()``: ``conv1`` (three 3x3 convs with
    their BNs) plus ``bn1``."""
    with torch.device("meta"):
        deep, plain = resnet50d(), resnet50()
    expected = sum(p.numel() for m in (deep.conv1, deep.bn1) for p in m.parameters())
    old = sum(p.numel() for m in (plain.conv1, plain.bn1) for p in m.parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return (
        f"{expected:,} parameters: 3·3·(3·32 + 32·32 + 32·64) conv weights + 2·(32 + 32 + 64) BN; "
        f"the 7x7 stem has {old:,}"
    )


@exercise("The logit gap label smoothing aims for")
def optimal_gap(fn: Callable[[float, int], float]) -> str:
    """The learner's ``fn(epsilon, num_classes)``: the gap between the true logit and every
    other logit (all others equal) that minimises torch's label-smoothed cross-entropy."""
    for epsilon, k in [(0.1, 10), (0.1, 1000), (0.2, 10), (0.05, 100)]:
        got = float(fn(epsilon, k))
        gaps = torch.linspace(0.0, 20.0, 20001, dtype=torch.float64)
        logits = torch.zeros(len(gaps), k, dtype=torch.float64)
        logits[:, 0] = gaps
        target = torch.zeros(len(gaps), dtype=torch.long)
        loss = torch.nn.functional.cross_entropy(
            logits, target, label_smoothing=epsilon, reduction="none"
        )
        best = gaps[loss.argmin()].item()
        expect(
            abs(got - best) < 2e-3,
            f"fn({epsilon}, {k}) returned {got:.4f}; torch's loss is smallest at a gap of "
            f"{best:.3f}",
        )
    return "log((1 - ε + ε/K) / (ε/K)): 4.51 for ε = 0.1 and 10 classes, 9.21 for 1000 classes"


@exercise("Expected calibration error by hand")
def ece(fn: Callable[[torch.Tensor, torch.Tensor, int], float]) -> str:
    """The learner's ``fn(confidence, correct, bins)``: confidence (N,) top probabilities,
    correct (N,) bool; returns ECE over ``bins`` equal-width bins of (0, 1]."""
    g = torch.Generator().manual_seed(4)
    for n, k, bins, scale in [(500, 10, 10, 3.0), (300, 5, 15, 1.0), (200, 3, 5, 6.0)]:
        logits = torch.randn(n, k, generator=g) * scale
        labels = torch.randint(0, k, (n,), generator=g)
        labels[: n // 2] = logits[: n // 2].argmax(dim=1)  # half right, so bins differ
        confidence, predicted = torch.softmax(logits, dim=1).max(dim=1)
        expected = expected_calibration_error(logits, labels, bins)
        got = float(fn(confidence, predicted == labels, bins))
        expect(
            math.isclose(got, expected, abs_tol=1e-6),
            f"with {bins} bins on {n} random predictions you got {got:.5f}, "
            f"helpers.inspection.calibration gives {expected:.5f}",
        )
    return "matches helpers.inspection.expected_calibration_error"


@exercise("The cosine schedule")
def cosine_lr(fn: Callable[[int, int, float], float]) -> str:
    """The learner's ``fn(step, total_steps, base_lr)``, checked against torch's
    ``CosineAnnealingLR(T_max=total_steps)`` (eta_min 0) at every step."""
    for total, base in [(50, 0.1), (7, 0.4)]:
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([param], lr=base)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        for step in range(total + 1):
            lr = opt.param_groups[0]["lr"]
            got = float(fn(step, total, base))
            expect(
                math.isclose(got, lr, rel_tol=1e-6, abs_tol=1e-9),
                f"fn({step}, {total}, {base}) returned {got:.6f}, torch's CosineAnnealingLR "
                f"gives {lr:.6f}",
            )
            opt.step()
            schedule.step()
    return "base_lr · (1 + cos(π · step / total)) / 2, as torch's CosineAnnealingLR"
