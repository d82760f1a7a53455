"""The general :class:`ResNet` class, and one builder function per named model.

The builders are registered by name for :func:`create` and :func:`list_models`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .blocks import ActLayer, BasicBlock, Bottleneck, check_shortcut, get_act_layer

__all__ = [
    "STEMS",
    "ResNet",
    "create",
    "list_models",
    "plain18",
    "plain20",
    "plain32",
    "plain34",
    "plain44",
    "plain56",
    "plain110",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet34",
    "resnet44",
    "resnet50",
    "resnet56",
    "resnet101",
    "resnet110",
    "resnet152",
]

# Later issues add "deep" (ResNet-C/D three-conv stem) here and in ResNet._make_stem.
STEMS = ("imagenet", "cifar")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_options(
    block: Any,
    layers: Sequence[int],
    widths: Sequence[int],
    *,
    num_classes: Any,
    in_chans: Any,
    stem: Any,
    stem_width: Any,
    width: Any,
    shortcut: Any,
    dropout: Any,
    stride_in_1x1: bool,
    zero_init_residual: bool,
) -> tuple[list[int], list[int]]:
    """Raise a clear error for any invalid ResNet option; return layers and widths as lists."""
    if block not in (BasicBlock, Bottleneck):
        raise TypeError(f"block must be BasicBlock or Bottleneck, got {block!r}")
    _check_int("num_classes", num_classes, 1)
    _check_int("in_chans", in_chans, 1)
    layers = list(layers)
    if not layers:
        raise ValueError("layers must list the number of blocks of at least one stage")
    for i, n in enumerate(layers):
        _check_int(f"layers[{i}]", n, 1)
    widths = list(widths)
    if len(widths) != len(layers):
        raise ValueError(
            f"widths needs one entry per stage: {len(layers)} stages (layers={layers}) "
            f"but {len(widths)} widths ({widths})"
        )
    for i, w in enumerate(widths):
        _check_int(f"widths[{i}]", w, 1)
    if stem_width is not None:
        _check_int("stem_width", stem_width, 1)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"width (multiplier) must be a number > 0, got {width!r}")
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
    check_shortcut(shortcut)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    if stride_in_1x1 and block is not Bottleneck:
        raise ValueError("stride_in_1x1 applies to Bottleneck blocks only (it has no 1x1)")
    if zero_init_residual and shortcut is None:
        raise ValueError(
            "zero_init_residual=True needs residual connections: with shortcut=None the "
            "zeroed BN would block the signal"
        )
    return layers, widths


class ResNet(nn.Module):
    """A ResNet: stem, stages ``layer1..layerN`` of blocks, global average pool, dropout, fc.

    ``block`` is :class:`BasicBlock` or :class:`Bottleneck`; ``layers`` the number of blocks
    per stage; ``widths`` the planes per stage (scaled by ``width``). The first stage keeps the
    resolution, every later one halves it. See the module docstring for the options.
    x: (N, in_chans, H, W) float with H, W >= ``total_stride`` -> logits (N, num_classes).
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: Sequence[int],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: str = "imagenet",
        stem_width: int | None = None,
        width: float = 1.0,
        shortcut: str | None = "B",
        act: str | ActLayer = "relu",
        stride_in_1x1: bool = False,
        separable: bool = False,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        layers, widths = _check_options(
            block, layers, widths, num_classes=num_classes, in_chans=in_chans, stem=stem,
            stem_width=stem_width, width=width, shortcut=shortcut, dropout=dropout,
            stride_in_1x1=stride_in_1x1, zero_init_residual=zero_init_residual,
        )  # fmt: skip
        act_layer = get_act_layer(act)

        def scaled(channels: int) -> int:
            return max(1, round(channels * width))

        self.in_chans = in_chans
        self.num_classes = num_classes
        self.stem_type = stem
        self.shortcut = shortcut

        stem_channels = scaled(stem_width if stem_width is not None else widths[0])
        stem_stride = self._make_stem(stem, in_chans, stem_channels, act_layer)

        block_kwargs: dict[str, Any] = {
            "shortcut": shortcut,
            "act": act_layer,
            "separable": separable,
        }
        if block is Bottleneck:
            block_kwargs["stride_in_1x1"] = stride_in_1x1
        in_planes = stem_channels
        self.stage_names: list[str] = []
        for i, (num_blocks, planes) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if i == 0 else 2
            stage = []
            for j in range(num_blocks):
                block_stride = stride if j == 0 else 1
                stage.append(block(in_planes, scaled(planes), block_stride, **block_kwargs))
                in_planes = scaled(planes) * block.expansion
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*stage))
            self.stage_names.append(name)

        self.num_features = in_planes
        self.total_stride = stem_stride * 2 ** (len(layers) - 1)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(self.num_features, num_classes)

        self._init_weights(zero_init_residual)

    def _make_stem(self, stem: str, in_chans: int, channels: int, act_layer: ActLayer) -> int:
        """Create conv1, bn1, act1, maxpool for ``stem``; return the stem's total stride."""
        # Top-level names as torchvision (conv1, bn1, maxpool) keep state dicts compatible.
        # Later: stem="deep" makes conv1 a Sequential of three 3x3 convs (ResNet-C).
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, channels, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.act1 = act_layer()
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            return 4
        # "cifar": 32x32 images are too small to lose 3/4 of their pixels in the first layer.
        self.conv1 = nn.Conv2d(in_chans, channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act1 = act_layer()
        self.maxpool = nn.Identity()
        return 1

    def _init_weights(self, zero_init_residual: bool) -> None:
        # He (Kaiming) normal init for convs and unit BN, as torchvision; fc keeps
        # PyTorch's default uniform init.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # Each residual block starts as the identity (Goyal et al. 2017, +0.2-0.3 %).
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    m.zero_init_last()

    @property
    def min_input_size(self) -> int:
        """Smallest H and W the network accepts: its total downsampling factor."""
        return self.total_stride

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError/TypeError naming the problem if ``x`` does not fit this network."""
        if not isinstance(x, Tensor):
            raise TypeError(
                f"expected a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}"
            )
        if x.dim() != 4:
            hint = " (add a batch dimension with x.unsqueeze(0))" if x.dim() == 3 else ""
            raise ValueError(
                f"expected a 4-D input (N, C, H, W), got a {x.dim()}-D tensor of shape "
                f"{tuple(x.shape)}{hint}"
            )
        if not x.is_floating_point():
            raise TypeError(
                f"expected a floating-point input, got dtype {x.dtype} (convert images with "
                "x.float() / 255 and normalise them)"
            )
        if x.shape[1] != self.in_chans:
            raise ValueError(
                f"expected {self.in_chans} input channels (in_chans={self.in_chans}), got "
                f"{x.shape[1]} in an input of shape {tuple(x.shape)}"
            )
        height, width = x.shape[-2:]
        if height < self.total_stride or width < self.total_stride:
            hint = " (or use stem='cifar' for small images)" if self.stem_type == "imagenet" else ""
            raise ValueError(
                f"input of {height}x{width} pixels is too small for this network: it downsamples "
                f"by {self.total_stride} in total, so H and W must be at least "
                f"{self.total_stride}{hint}"
            )

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (N, in_chans, H, W) -> last feature map (N, num_features, H / s, W / s)."""
        self.check_input(x)
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Feature map (N, num_features, h, w) -> logits (N, num_classes) (or pooled features)."""
        x = torch.flatten(self.avgpool(x), 1)
        x = self.dropout(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


# ---------------------------------------------------------------------------------------
# Named models
# ---------------------------------------------------------------------------------------

_MODELS: dict[str, Callable[..., ResNet]] = {}


def _register(fn: Callable[..., ResNet]) -> Callable[..., ResNet]:
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names accepted by :func:`create`, sorted."""
    return sorted(_MODELS)


def create(name: str, **kwargs: Any) -> ResNet:
    """Build the model called ``name`` (see :func:`list_models`) with keyword options."""
    try:
        builder = _MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; known models: {list_models()}") from None
    return builder(**kwargs)


def _cifar(n: int, **kwargs: Any) -> ResNet:
    # He et al. 2016, section 4.2: 3x3 stem with 16 channels, three stages of n blocks with
    # 16/32/64 channels (6n + 2 weighted layers), option A shortcuts, 10 classes.
    kwargs.setdefault("num_classes", 10)
    kwargs.setdefault("widths", (16, 32, 64))
    kwargs.setdefault("stem", "cifar")
    kwargs.setdefault("shortcut", "A")
    return ResNet(BasicBlock, [n, n, n], **kwargs)


def _plain(builder: Callable[..., ResNet], **kwargs: Any) -> ResNet:
    if kwargs.get("shortcut") is not None:
        raise ValueError(f"plain nets have no shortcuts; got shortcut={kwargs['shortcut']!r}")
    kwargs["shortcut"] = None
    return builder(**kwargs)


@_register
def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18 (ImageNet layout, BasicBlock [2, 2, 2, 2]); torchvision-compatible."""
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


@_register
def resnet34(**kwargs: Any) -> ResNet:
    """ResNet-34 (ImageNet layout, BasicBlock [3, 4, 6, 3]); torchvision-compatible."""
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


@_register
def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50 (ImageNet layout, Bottleneck [3, 4, 6, 3]); torchvision-compatible."""
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


@_register
def resnet101(**kwargs: Any) -> ResNet:
    """ResNet-101 (ImageNet layout, Bottleneck [3, 4, 23, 3]); torchvision-compatible."""
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


@_register
def resnet152(**kwargs: Any) -> ResNet:
    """ResNet-152 (ImageNet layout, Bottleneck [3, 8, 36, 3]); torchvision-compatible."""
    return ResNet(Bottleneck, [3, 8, 36, 3], **kwargs)


@_register
def resnet20(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-20 (He et al. 2016, n=3, 0.27 M parameters)."""
    return _cifar(3, **kwargs)


@_register
def resnet32(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-32 (n=5, 0.46 M parameters)."""
    return _cifar(5, **kwargs)


@_register
def resnet44(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-44 (n=7, 0.66 M parameters)."""
    return _cifar(7, **kwargs)


@_register
def resnet56(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-56 (n=9, 0.85 M parameters)."""
    return _cifar(9, **kwargs)


@_register
def resnet110(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-110 (n=18, 1.7 M parameters)."""
    return _cifar(18, **kwargs)


@_register
def plain18(**kwargs: Any) -> ResNet:
    """Plain-18: ResNet-18 without shortcuts (He et al. 2016, Table 2)."""
    return _plain(resnet18, **kwargs)


@_register
def plain34(**kwargs: Any) -> ResNet:
    """Plain-34: ResNet-34 without shortcuts (He et al. 2016, Fig. 3 middle)."""
    return _plain(resnet34, **kwargs)


@_register
def plain20(**kwargs: Any) -> ResNet:
    """CIFAR plain-20: ResNet-20 without shortcuts."""
    return _plain(resnet20, **kwargs)


@_register
def plain32(**kwargs: Any) -> ResNet:
    """CIFAR plain-32: ResNet-32 without shortcuts."""
    return _plain(resnet32, **kwargs)


@_register
def plain44(**kwargs: Any) -> ResNet:
    """CIFAR plain-44: ResNet-44 without shortcuts."""
    return _plain(resnet44, **kwargs)


@_register
def plain56(**kwargs: Any) -> ResNet:
    """CIFAR plain-56: ResNet-56 without shortcuts."""
    return _plain(resnet56, **kwargs)


@_register
def plain110(**kwargs: Any) -> ResNet:
    """CIFAR plain-110: ResNet-110 without shortcuts."""
    return _plain(resnet110, **kwargs)
