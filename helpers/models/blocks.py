"""Building blocks of the ResNets: activations, convolutions, shortcuts and the two blocks.

Everything a block needs lives here, so that a later variant (an attention module, an
average-pool shortcut) is a small addition to this file and an option of :class:`ResNet`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ACTIVATIONS",
    "SHORTCUTS",
    "ActLayer",
    "BasicBlock",
    "Bottleneck",
    "SeparableConv2d",
    "ZeroPadShortcut",
    "check_shortcut",
    "conv1x1",
    "conv3x3",
    "get_act_layer",
    "make_shortcut",
]

ActLayer = Callable[[], nn.Module]

# In-place only where the backward pass needs the output, not the overwritten input
# (ReLU, LeakyReLU), which saves one activation map per layer as torchvision does.
ACTIVATIONS: dict[str, ActLayer] = {
    "relu": partial(nn.ReLU, inplace=True),
    "leaky_relu": partial(nn.LeakyReLU, negative_slope=0.01, inplace=True),
    "silu": nn.SiLU,
    "swish": nn.SiLU,  # Swish with beta=1 is SiLU
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "mish": nn.Mish,
    "hardswish": nn.Hardswish,
    "prelu": nn.PReLU,  # one learnable slope per layer
    "tanh": nn.Tanh,
}

SHORTCUTS = ("A", "B", "C", None)


def get_act_layer(act: str | ActLayer) -> ActLayer:
    """Resolve ``act`` to a zero-argument factory that returns a fresh activation module.

    ``act`` is a name from :data:`ACTIVATIONS`, an ``nn.Module`` class (``nn.GELU``) or a
    zero-argument callable returning a module (``lambda: nn.LeakyReLU(0.2)``).
    """
    if isinstance(act, str):
        try:
            return ACTIVATIONS[act]
        except KeyError:
            raise ValueError(
                f"unknown activation {act!r}; choose one of {sorted(ACTIVATIONS)}, "
                "or pass an nn.Module class or a zero-argument factory"
            ) from None
    if isinstance(act, nn.Module):
        # One shared instance would tie the parameters of e.g. PReLU across the whole net.
        raise TypeError(
            f"act must be a name, an nn.Module class or a zero-argument factory, got the "
            f"instance {act!r}; pass its class (e.g. {type(act).__name__}) instead"
        )
    if not callable(act):
        raise TypeError(
            f"act must be a name, an nn.Module class or a zero-argument factory, got {act!r}"
        )
    try:
        module = act()
    except TypeError as err:
        raise TypeError(f"act={act!r} could not be called without arguments: {err}") from err
    if not isinstance(module, nn.Module):
        raise TypeError(f"act={act!r} returned {type(module).__name__}, expected an nn.Module")
    return act


def check_shortcut(shortcut: Any) -> str | None:
    if shortcut not in SHORTCUTS:
        raise ValueError(
            f"shortcut must be 'A' (zero-padded identity), 'B' (projection where the shape "
            f"changes), 'C' (projection everywhere) or None (plain net), got {shortcut!r}"
        )
    return shortcut


class SeparableConv2d(nn.Sequential):
    """Depthwise 3x3 convolution (one filter per channel) followed by a pointwise 1x1 one.

    Costs about ``9*C_in + C_in*C_out`` weights instead of ``9*C_in*C_out``.
    x: (N, C_in, H, W) -> (N, C_out, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, stride, padding=1, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, separable: bool = False):
    """3x3 convolution with padding 1 and no bias (the following BN has one)."""
    if separable:
        return SeparableConv2d(in_channels, out_channels, stride)
    return nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias."""
    return nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Shortcut option A (He et al. 2016): identity, subsampled by ``stride``, with zero channels.

    Has no parameters. x: (N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride)),
    the first C_in channels being x itself and the rest zeros.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"option A can only add channels: in_channels={in_channels} > "
                f"out_channels={out_channels}; use shortcut 'B' or 'C'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            # Taking every stride-th pixel matches the output size of a 3x3/stride conv, pad 1.
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        if extra:
            x = F.pad(x, (0, 0, 0, 0, 0, extra))  # pads (W, H, C) from the last dim backwards
        return x

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def make_shortcut(
    kind: str | None, in_channels: int, out_channels: int, stride: int = 1
) -> nn.Module | None:
    """The shortcut branch of a block, or ``None`` where it is the plain identity.

    Option "B" and "C" projections are ``Sequential(conv1x1, BN)``, named ``downsample.0`` /
    ``downsample.1`` as in torchvision. Returns ``None`` for ``kind=None`` too (the caller
    knows whether the block is residual at all).
    """
    check_shortcut(kind)
    same_shape = stride == 1 and in_channels == out_channels
    if kind is None or (same_shape and kind in ("A", "B")):
        return None
    if kind == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    # Later: avg_down (ResNet-D) puts an AvgPool2d(2) here and makes the 1x1 conv stride 1.
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut: ``act(bn2(conv2(act(bn1(conv1(x))))) + s(x))``.

    x: (N, in_planes, H, W) -> (N, planes, H / stride, W / stride).
    ``shortcut=None`` gives the plain block (no addition). ``attn_layer(channels)``, if given,
    builds a module applied to the residual branch before the addition (SE, CBAM).
    """

    expansion: int = 1

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: str | None = "B",
        act: str | ActLayer = "relu",
        separable: bool = False,
        attn_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        act_layer = get_act_layer(act)
        self.residual = check_shortcut(shortcut) is not None
        out_planes = planes * self.expansion
        self.conv1 = conv3x3(in_planes, planes, stride, separable)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = act_layer()
        self.conv2 = conv3x3(planes, out_planes, 1, separable)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.attn = attn_layer(out_planes) if attn_layer is not None else None
        self.downsample = make_shortcut(shortcut, in_planes, out_planes, stride)
        self.act2 = act_layer()

    def zero_init_last(self) -> None:
        """Start the residual branch at zero so the block begins as the identity."""
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.attn is not None:
            out = self.attn(out)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.act2(out)


class Bottleneck(nn.Module):
    """1x1 (reduce) -> 3x3 -> 1x1 (expand by 4) conv-BN layers plus a shortcut.

    x: (N, in_planes, H, W) -> (N, 4 * planes, H / stride, W / stride).
    The stride sits on the 3x3 conv (ResNet v1.5, torchvision); ``stride_in_1x1=True`` puts
    it on the first 1x1 conv as in the original paper (v1), which skips 3/4 of the input.
    """

    expansion: int = 4

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: str | None = "B",
        act: str | ActLayer = "relu",
        separable: bool = False,
        stride_in_1x1: bool = False,
        attn_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        act_layer = get_act_layer(act)
        self.residual = check_shortcut(shortcut) is not None
        out_planes = planes * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_planes, planes, stride_1x1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = act_layer()
        self.conv2 = conv3x3(planes, planes, stride_3x3, separable)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = act_layer()
        self.conv3 = conv1x1(planes, out_planes)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.attn = attn_layer(out_planes) if attn_layer is not None else None
        self.downsample = make_shortcut(shortcut, in_planes, out_planes, stride)
        self.act3 = act_layer()

    def zero_init_last(self) -> None:
        """Start the residual branch at zero so the block begins as the identity."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.attn is not None:
            out = self.attn(out)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.act3(out)
