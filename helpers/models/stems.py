"""Stems: the layers before the first residual stage.

Every stem is the four top-level modules ``conv1``, ``bn1``, ``act1``, ``maxpool`` (the names of
torchvision and timm, so their state dicts load); only what ``conv1`` and ``maxpool`` are differs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import nn

STEMS = ("imagenet", "cifar", "deep")


def check_stem(stem: object) -> str:
    """Return ``stem`` if it is one of :data:`STEMS`, else raise a ValueError."""
    if stem not in STEMS:
        raise ValueError(
            f"stem must be one of {STEMS} ('imagenet': 7x7/2 conv + max-pool, 'cifar': 3x3/1 "
            f"conv, 'deep': three 3x3 convs + max-pool), got {stem!r}"
        )
    return stem  # type: ignore[return-value]


def make_stem(
    stem: str, in_chans: int, channels: int, act_layer: Callable[[], nn.Module]
) -> tuple[OrderedDict[str, nn.Module], int]:
    """The stem's modules (``conv1``, ``bn1``, ``act1``, ``maxpool``) and its total stride.

    - "imagenet": 7x7 stride-2 conv, BN, act, 3x3 stride-2 max-pool (He et al. 2016); stride 4.
    - "deep": ResNet-C (He et al. 2019, "Bag of Tricks"): ``conv1`` is three 3x3 convs of
      widths ``channels/2, channels/2, channels`` (32-32-64), the first with stride 2, keyed
      ``conv1.0/1/3/4/6`` as timm's ``stem_type="deep"``; then BN, act, max-pool; stride 4.
    - "cifar": one 3x3 stride-1 conv, BN, act and no pooling (He et al. 2016, section 4.2:
      32x32 images are too small to lose 3/4 of their pixels in the first layer); stride 1.
    x: (N, in_chans, H, W) -> (N, channels, H / stride, W / stride).
    """
    check_stem(stem)
    if stem == "cifar":
        conv1: nn.Module = nn.Conv2d(in_chans, channels, 3, stride=1, padding=1, bias=False)
        maxpool: nn.Module = nn.Identity()
        stride = 1
    else:
        if stem == "imagenet":
            conv1 = nn.Conv2d(in_chans, channels, 7, stride=2, padding=3, bias=False)
        else:
            inner = max(1, channels // 2)
            conv1 = nn.Sequential(
                nn.Conv2d(in_chans, inner, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(inner),
                act_layer(),
                nn.Conv2d(inner, inner, 3, stride=1, padding=1, bias=False),
                nn.BatchNorm2d(inner),
                act_layer(),
                nn.Conv2d(inner, channels, 3, stride=1, padding=1, bias=False),
            )
        maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stride = 4
    modules = OrderedDict(
        conv1=conv1, bn1=nn.BatchNorm2d(channels), act1=act_layer(), maxpool=maxpool
    )
    return modules, stride
