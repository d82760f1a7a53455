"""Attention modules for residual blocks: squeeze-and-excitation (SE) and CBAM.

Each module maps x: (N, C, H, W) -> (N, C, H, W), the input re-weighted by sigmoid gates, and is
built as ``module(channels)``, the call a block makes with its output width. Inside a block the
module is the attribute ``se`` and sits after the last BN of the residual branch, before the
addition (Hu et al. 2018, Fig. 3; Woo et al. 2018, Fig. 3), as in timm's ``resnet.py``.

Parameter names follow timm's ``layers/squeeze_excite.py`` and ``layers/cbam.py`` (``se.fc1``,
``se.fc2``; ``se.channel.fc1/fc2``, ``se.spatial.conv.conv``, ``se.spatial.conv.bn``), so timm's
state dicts load with ``strict=True``. Every gate is an ``nn.Sigmoid`` called ``gate``, which is
where :func:`helpers.inspection.attention_maps` reads the weights.

Papers: J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks" (CVPR 2018);
S. Woo, J. Park, J.-Y. Lee, I. S. Kweon, "CBAM: Convolutional Block Attention Module" (ECCV 2018).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from helpers.validate import check_int

AttnLayer = Callable[[int], nn.Module]


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.0) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``divisor``), as timm.

    timm's ``layers/helpers.py``: ``max(divisor, int(value + divisor / 2) // divisor * divisor)``,
    plus one more ``divisor`` if that fell below ``round_limit * value`` (timm's attention
    modules pass ``round_limit=0``, so never). ``make_divisible(64 / 16, 8) == 8``.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded


def _hidden_width(channels: int, rd_ratio: float, rd_divisor: int) -> int:
    check_int("channels", channels, 1)
    if isinstance(rd_ratio, bool) or not isinstance(rd_ratio, (int, float)) or rd_ratio <= 0:
        raise ValueError(f"rd_ratio must be a number > 0 (1/16 in both papers), got {rd_ratio!r}")
    check_int("rd_divisor", rd_divisor, 1)
    return make_divisible(channels * rd_ratio, rd_divisor)


class SqueezeExcitation(nn.Module):
    """SE (Hu et al. 2018): one sigmoid weight per channel from the globally pooled features.

    ``x * sigmoid(fc2(relu(fc1(mean_hw(x)))))`` with 1x1 convs (with bias) as timm's
    ``SEModule``. The hidden width is timm's ``make_divisible(channels * rd_ratio, 8)`` (8 for
    64 channels), where the SE paper uses plain ``channels / 16`` (4 for 64 channels).
    x: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(
        self, channels: int, rd_ratio: float = 1 / 16, rd_divisor: int = 8, bias: bool = True
    ) -> None:
        super().__init__()
        hidden = _hidden_width(channels, rd_ratio, rd_divisor)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=bias)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=bias)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        squeezed = x.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(squeezed))))


class ChannelAttention(nn.Module):
    """CBAM's channel attention: a shared MLP on the average- and the max-pooled features.

    ``x * sigmoid(mlp(mean_hw(x)) + mlp(max_hw(x)))``, the MLP being 1x1 convs ``fc1``, ReLU,
    ``fc2`` with hidden width ``channels / 16`` (timm's ``make_divisible(channels / 16, 1)``).
    ``mlp_bias=True`` is the CBAM paper's official code (``nn.Linear`` layers, 28.09 M
    parameters for CBAM-ResNet50); timm's ``ChannelAttn`` has no bias (``mlp_bias=False``).
    x: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(
        self, channels: int, rd_ratio: float = 1 / 16, rd_divisor: int = 1, mlp_bias: bool = True
    ) -> None:
        super().__init__()
        hidden = _hidden_width(channels, rd_ratio, rd_divisor)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=mlp_bias)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=mlp_bias)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        avg = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        peak = self.fc2(self.act(self.fc1(x.amax((2, 3), keepdim=True))))
        return x * self.gate(avg + peak)


class SpatialAttention(nn.Module):
    """CBAM's spatial attention: one sigmoid weight per position from a 7x7 conv + BN.

    The conv sees two maps, [mean over channels, max over channels] in timm's order (the CBAM
    code stacks them as [max, mean]), and has no bias; the BN is ``conv.bn`` as timm's
    ``ConvNormAct``. ``channels`` is ignored (the module works on any width) and only accepted
    so that it is built like every attention module. x: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int | None = None, kernel_size: int = 7) -> None:
        super().__init__()
        check_int("kernel_size", kernel_size, 1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep H and W, got {kernel_size}")
        conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.conv = nn.Sequential(OrderedDict(conv=conv, bn=nn.BatchNorm2d(1)))
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * self.gate(self.conv(pooled))  # gate: (N, 1, H, W)


class CBAM(nn.Module):
    """CBAM (Woo et al. 2018): channel attention, then spatial attention, in sequence.

    Keys ``channel.fc1/fc2`` and ``spatial.conv.conv/bn`` as timm's ``CbamModule``; options as
    :class:`ChannelAttention` (``mlp_bias=True``: the paper's code; ``False``: timm) and
    :class:`SpatialAttention`. x: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1 / 16,
        rd_divisor: int = 1,
        mlp_bias: bool = True,
        spatial_kernel_size: int = 7,
    ) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, rd_ratio, rd_divisor, mlp_bias)
        self.spatial = SpatialAttention(channels, spatial_kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.spatial(self.channel(x))


# Names accepted by ``attention=``; "channel" and "spatial" are CBAM's two halves alone.
ATTENTIONS: dict[str, AttnLayer] = {
    "se": SqueezeExcitation,
    "cbam": CBAM,
    "channel": ChannelAttention,
    "spatial": SpatialAttention,
}


def get_attention_layer(attention: Any) -> AttnLayer | None:
    """Resolve ``attention`` to a factory ``channels -> nn.Module``, or ``None`` for no attention.

    ``attention`` is ``None``, a name from :data:`ATTENTIONS`, an ``nn.Module`` class or any
    callable taking the channel count (``functools.partial(CBAM, mlp_bias=False)``).
    """
    if attention is None:
        return None
    if isinstance(attention, str):
        try:
            return ATTENTIONS[attention]
        except KeyError:
            raise ValueError(
                f"unknown attention {attention!r}; known: {sorted(ATTENTIONS)}, or pass an "
                "nn.Module class (built as cls(channels)) or None"
            ) from None
    if isinstance(attention, nn.Module):
        # One shared instance would tie the weights of every block together.
        raise TypeError(
            f"attention must be a name, an nn.Module class or a factory, got the instance "
            f"{type(attention).__name__}; pass its class instead"
        )
    if not callable(attention):
        raise TypeError(
            f"attention must be None, a name from {sorted(ATTENTIONS)}, an nn.Module class or "
            f"a callable taking the channel count, got {attention!r}"
        )
    return attention


def build_attention(attn_layer: AttnLayer | None, channels: int) -> nn.Module | None:
    """``attn_layer(channels)``, checked to be an ``nn.Module`` (``None`` stays ``None``)."""
    if attn_layer is None:
        return None
    module = attn_layer(channels)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"attention factory {attn_layer!r} returned {type(module).__name__} for "
            f"{channels} channels, expected an nn.Module"
        )
    return module
