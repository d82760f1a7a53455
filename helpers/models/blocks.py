"""Residual blocks, and the activations and convolutions they are made of.

The block protocol (what :class:`helpers.models.ResNet` needs of ``block=``; timm's ``resnet.py``
follows the same pattern):

- a class attribute ``expansion`` (int): the block outputs ``planes * expansion`` channels;
- ``block(in_planes, planes, stride, *, shortcut, act, attn_layer, **block_args)`` builds one
  block, where ``shortcut`` is the stage's shortcut factory (:class:`~.shortcuts.Shortcut`, called
  as ``shortcut(in_channels, out_channels, stride)``) or ``None`` for a plain block, ``act`` a
  zero-argument activation factory, ``attn_layer`` ``None`` or a factory ``channels -> module``
  (SE, CBAM; keep it as the attribute ``se`` so that timm's keys match), and ``block_args`` the
  network's ``block_args`` plus the options ``separable``, ``stride_in_1x1``, ``groups`` and
  ``base_width`` where they are set;
- ``forward``: (N, in_planes, H, W) -> (N, planes * expansion, H / stride, W / stride);
- optionally ``zero_init_last()``, which zeroes the last BN weight of the residual branch.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import Tensor, nn

from helpers.models.attention import AttnLayer, build_attention
from helpers.models.shortcuts import ShortcutSpec, make_shortcut

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


def conv3x3(
    in_channels: int,
    out_channels: int,
    stride: int = 1,
    separable: bool = False,
    groups: int = 1,
) -> nn.Module:
    """3x3 convolution with padding 1 and no bias (the following BN has one)."""
    if separable:
        if groups != 1:
            raise ValueError("separable=True already groups per channel; it needs groups=1")
        return SeparableConv2d(in_channels, out_channels, stride)
    return nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, groups=groups, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias."""
    return nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut: ``act(bn2(conv2(act(bn1(conv1(x))))) + s(x))``.

    x: (N, in_planes, H, W) -> (N, planes, H / stride, W / stride).
    ``shortcut`` is a name ("A", "B", "C"), a shortcut factory, or ``None`` for the plain block
    (no addition). ``attn_layer(channels)``, if given, builds the module ``se`` applied to the
    residual branch before the addition (SE, CBAM).
    """

    expansion: int = 1

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: ShortcutSpec = "B",
        act: str | ActLayer = "relu",
        separable: bool = False,
        attn_layer: AttnLayer | None = None,
    ) -> None:
        super().__init__()
        act_layer = get_act_layer(act)
        self.residual = shortcut is not None
        out_planes = planes * self.expansion
        self.conv1 = conv3x3(in_planes, planes, stride, separable)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = act_layer()
        self.conv2 = conv3x3(planes, out_planes, 1, separable)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.se = build_attention(attn_layer, out_planes)
        self.downsample = make_shortcut(shortcut, in_planes, out_planes, stride)
        self.act2 = act_layer()

    def zero_init_last(self) -> None:
        """Start the residual branch at zero so the block begins as the identity."""
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.act2(out)


class Bottleneck(nn.Module):
    """1x1 (reduce) -> 3x3 -> 1x1 (expand by 4) conv-BN layers plus a shortcut.

    x: (N, in_planes, H, W) -> (N, 4 * planes, H / stride, W / stride).
    The stride sits on the 3x3 conv (ResNet v1.5, torchvision); ``stride_in_1x1=True`` puts
    it on the first 1x1 conv as in the original paper (v1), which skips 3/4 of the input.
    ``groups`` and ``base_width`` make the 3x3 conv grouped and ``int(planes * base_width / 64)
    * groups`` wide, as torchvision's ``groups`` / ``width_per_group``: ResNeXt-50 32x4d is
    ``groups=32, base_width=4``, Wide ResNet-50-2 ``base_width=128``. ``shortcut`` and
    ``attn_layer`` as in :class:`BasicBlock`.
    """

    expansion: int = 4

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: ShortcutSpec = "B",
        act: str | ActLayer = "relu",
        separable: bool = False,
        stride_in_1x1: bool = False,
        groups: int = 1,
        base_width: int = 64,
        attn_layer: AttnLayer | None = None,
    ) -> None:
        super().__init__()
        act_layer = get_act_layer(act)
        self.residual = shortcut is not None
        width = int(planes * (base_width / 64.0)) * groups
        out_planes = planes * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_planes, width, stride_1x1)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = act_layer()
        self.conv2 = conv3x3(width, width, stride_3x3, separable, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.act2 = act_layer()
        self.conv3 = conv1x1(width, out_planes)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.se = build_attention(attn_layer, out_planes)
        self.downsample = make_shortcut(shortcut, in_planes, out_planes, stride)
        self.act3 = act_layer()

    def zero_init_last(self) -> None:
        """Start the residual branch at zero so the block begins as the identity."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.act3(out)
