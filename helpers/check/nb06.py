"""Self-checks for notebook 06 (transfer learning)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from helpers.check.core import exercise, expect, expect_close
from helpers.data import make_shapes
from helpers.models import resnet18
from helpers.transfer import SEVERITY, corrupt, load_weights


@exercise("Trainable parameters after freeze(until='layer3')")
def trainable_after_freeze(answer: int) -> str:
    """The learner's count of what still trains in ``resnet18(num_classes=10)`` frozen to layer3."""
    with torch.device("meta"):  # shapes only
        model = resnet18(num_classes=10)
    expected = sum(p.numel() for p in model.layer4.parameters())
    expected += sum(p.numel() for p in model.fc.parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return f"{answer:,} = layer4 ({expected - 5130:,}) + fc (512·10 + 10 = 5,130)"


def _se_pair() -> tuple[nn.Module, nn.Module]:
    """A plain ResNet-18 (width 0.25, random BN) and an SE twin holding its weights."""

    torch.manual_seed(0)
    plain = resnet18(width=0.25, num_classes=4)
    with torch.no_grad():
        for m in plain.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    twin = resnet18(width=0.25, num_classes=4, attention="se")
    load_weights(twin, plain.state_dict())
    return plain.eval(), twin.eval()


@exercise("SE modules that start as the identity")
def se_identity_init(fn: Callable[[nn.Module], None]) -> str:
    """The learner's ``fn(model)``: changes the SE modules (and anything else) in place so that
    a ResNet with SE computes what the same ResNet without SE computes."""
    plain, twin = _se_pair()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = plain(x)
        fn(twin)
        got = twin.eval()(x)
    expect(tuple(got.shape) == tuple(expected.shape), f"output shape {tuple(got.shape)} changed")
    scale = expected.abs().max().item()
    diff = (got - expected).abs().max().item()
    expect(
        diff <= 1e-3 * scale,
        f"outputs differ from the network without SE by up to {diff:.3g} (logits up to "
        f"{scale:.3g}): the attention does not start as the identity yet",
    )
    trainable = all(p.requires_grad for p in twin.layer1[0].se.parameters())
    expect(trainable, "the SE parameters must stay trainable")
    return f"outputs match the plain network (max diff {diff:.2g} for logits up to {scale:.2g})"


@exercise("Contrast loss, CIFAR-10-C style")
def contrast(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> str:
    """The learner's ``fn(images uint8 (N, C, H, W), c) -> uint8``: (x - mean) * c + mean."""

    images = make_shapes(8, image_size=16, seed=3).images
    for severity, c in enumerate(SEVERITY["contrast"], start=1):
        got = fn(images.clone(), c)
        expect(
            isinstance(got, torch.Tensor) and got.dtype == torch.uint8,
            f"return a uint8 tensor, got {type(got).__name__} {getattr(got, 'dtype', '')}",
        )
        expected = corrupt(images, "contrast", severity)
        expect(got.shape == expected.shape, f"shape {tuple(got.shape)}, expected the input's")
        diff = (got.int() - expected.int()).abs().max().item()
        expect(
            diff <= 1,
            f"c={c}: pixels differ by up to {diff} grey levels from the reference (the mean is "
            "per image and per channel, in [0, 1] units, and the result is clipped and rounded)",
        )
    return "matches helpers.transfer.corrupt(..., 'contrast', severity) at all 5 severities"
