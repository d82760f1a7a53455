"""The general :class:`ResNet` class: a stem, stages of blocks, global pooling and a head ``fc``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from helpers.models.attention import AttnLayer, get_attention_layer
from helpers.models.blocks import ActLayer, get_act_layer
from helpers.models.heads import check_dropout, make_head
from helpers.models.shortcuts import Shortcut, check_shortcut
from helpers.models.stems import check_stem, make_stem
from helpers.validate import check_int


def _per_stage(name: str, value: Any, num_stages: int, check: Callable[[str, Any], Any]) -> tuple:
    """One checked value per stage: ``value`` repeated, or a tuple/list of ``num_stages`` values."""
    if isinstance(value, (tuple, list)):
        if len(value) != num_stages:
            raise ValueError(
                f"{name} takes one value or one per stage: this net has {num_stages} stages, "
                f"got {len(value)} values {tuple(value)!r}"
            )
        return tuple(check(f"{name}[{i}]", v) for i, v in enumerate(value))
    checked = check(name, value)
    return (checked,) * num_stages


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _check_block(block: Any) -> None:
    is_module_class = isinstance(block, type) and issubclass(block, nn.Module)
    expansion = getattr(block, "expansion", None)
    if not is_module_class or not isinstance(expansion, int) or isinstance(expansion, bool):
        raise TypeError(
            f"block must be an nn.Module class with an int attribute `expansion` that follows "
            f"the block protocol of helpers.models.blocks (like BasicBlock or Bottleneck), "
            f"got {block!r}"
        )


def _check_block_accepts(block: type, options: dict[str, Any]) -> None:
    """Raise a ValueError naming the first option ``block``'s constructor does not take."""
    params = inspect.signature(block).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for option in options:
        if option not in params:
            raise ValueError(
                f"{block.__name__} has no option {option!r}; it applies to blocks that take it "
                f"(stride_in_1x1, groups, base_width: Bottleneck)"
            )


def _check_layout(layers: Sequence[int], widths: Sequence[int]) -> tuple[list[int], list[int]]:
    layers = list(layers)
    if not layers:
        raise ValueError("layers must list the number of blocks of at least one stage")
    for i, n in enumerate(layers):
        check_int(f"layers[{i}]", n, 1)
    widths = list(widths)
    if len(widths) != len(layers):
        raise ValueError(
            f"widths needs one entry per stage: {len(layers)} stages (layers={layers}) "
            f"but {len(widths)} widths ({widths})"
        )
    for i, w in enumerate(widths):
        check_int(f"widths[{i}]", w, 1)
    return layers, widths


def _check_width(width: Any) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"width (multiplier) must be a number > 0, got {width!r}")
    return width


class ResNet(nn.Module):
    """A ResNet: stem, stages ``layer1..layerN`` of blocks, global average pool, head ``fc``.

    x: (N, in_chans, H, W) float with H, W >= ``total_stride`` -> logits (N, num_classes).
    The first stage keeps the resolution, every later one halves it. Options marked "per
    stage" take one value, or a tuple with one value per stage.

    Args:
        block: the block class of every stage: :class:`BasicBlock`, :class:`Bottleneck` or
            your own class following the protocol of :mod:`helpers.models.blocks` (an int
            ``expansion`` attribute; ``(in_planes, planes, stride, shortcut, ...)``).
        layers: the number of blocks per stage, e.g. ``(3, 4, 6, 3)`` for ResNet34/50.
        num_classes: outputs of the classifier ``fc``.
        in_chans: channels of the input images (3 for RGB, 1 for grey).
        widths: planes per stage before ``width`` scales them (a Bottleneck stage outputs
            ``expansion`` times as many channels).
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool, total stride 4), ``"cifar"``
            (one 3x3/1 conv, He et al. section 4.2) or ``"deep"`` (ResNet-C: three 3x3 convs
            of 32-32-64 channels + max-pool; Bag of Tricks, section 4).
        stem_width: channels out of the stem; default ``widths[0]`` (scaled by ``width``).
        width: multiplier for every channel count (0.5: half as wide); at least 1 channel.
        shortcut: ``"A"`` zero-padded identity where the shape changes, ``"B"`` a 1x1
            projection there and identity elsewhere, ``"C"`` projections everywhere (He et
            al., section 3.3), ``None`` no shortcut at all: a plain network.
        avg_down: per stage; ResNet-D downsampling in the projection shortcut: a 2x2 average
            pool, then a stride-1 1x1 conv + BN, instead of a stride-2 1x1 conv that skips
            three quarters of the input (Bag of Tricks, section 4).
        attention: per stage; ``None``, ``"se"`` (Squeeze-and-Excitation), ``"cbam"``,
            ``"channel"``, ``"spatial"``, an ``nn.Module`` class or a factory
            ``channels -> module``; the module sits in each block after its last BN, before
            the addition, under the name ``se``.
        act: the activation of blocks and stem: ``"relu"``, ``"leaky_relu"``, ``"silu"``,
            ``"gelu"`` ... or an ``nn.Module`` class / zero-argument factory.
        stride_in_1x1: Bottleneck only: put the stride on the first 1x1 conv (ResNet v1, the
            paper) instead of the 3x3 (v1.5, torchvision's default).
        separable: depthwise-separable 3x3 convolutions in the blocks (a depthwise 3x3, then
            a pointwise 1x1).
        groups: Bottleneck only: groups of the 3x3 conv (ResNeXt).
        base_width: Bottleneck only: width of the 3x3 conv per group, 64 by default (wider:
            Wide ResNet).
        block_args: further keyword arguments passed to every block.
        head_hidden: a hidden Linear layer (+ ReLU) of this size before the classifier, as in
            the TA-ResNet50 seed paper's redesigned head; ``None``: one Linear.
        dropout: dropout probability before the last Linear of the head.
        zero_init_residual: start the last BN of each residual branch at zero, so that every
            block starts as the identity (Goyal et al., "Accurate, Large Minibatch SGD").
    """

    def __init__(
        self,
        block: type[nn.Module],
        layers: Sequence[int],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: str = "imagenet",
        stem_width: int | None = None,
        width: float = 1.0,
        shortcut: str | None = "B",
        avg_down: bool | Sequence[bool] = False,
        attention: Any = None,
        act: str | ActLayer = "relu",
        stride_in_1x1: bool = False,
        separable: bool = False,
        groups: int = 1,
        base_width: int = 64,
        block_args: dict[str, Any] | None = None,
        head_hidden: int | None = None,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        _check_block(block)
        layers, widths = _check_layout(layers, widths)
        check_int("num_classes", num_classes, 1)
        check_int("in_chans", in_chans, 1)
        if stem_width is not None:
            check_int("stem_width", stem_width, 1)
        _check_width(width)
        check_stem(stem)
        check_shortcut(shortcut)
        check_dropout(dropout)
        if head_hidden is not None:
            check_int("head_hidden", head_hidden, 1)
        check_int("groups", groups, 1)
        check_int("base_width", base_width, 1)
        num_stages = len(layers)
        avg_downs = _per_stage("avg_down", avg_down, num_stages, _check_bool)
        attn_layers: tuple[AttnLayer | None, ...] = _per_stage(
            "attention", attention, num_stages, lambda _, a: get_attention_layer(a)
        )
        if shortcut is None and any(avg_downs):
            raise ValueError("avg_down changes projection shortcuts; a plain net has none")
        if zero_init_residual and shortcut is None:
            raise ValueError(
                "zero_init_residual=True needs residual connections: with shortcut=None the "
                "zeroed BN would block the signal"
            )
        extra_args = self._block_options(
            block, block_args, separable=separable, stride_in_1x1=stride_in_1x1,
            groups=groups, base_width=base_width,
        )  # fmt: skip
        act_layer = get_act_layer(act)

        def scaled(channels: int) -> int:
            return max(1, round(channels * width))

        self.in_chans = in_chans
        self.num_classes = num_classes
        self.stem_type = stem
        self.shortcut = shortcut
        self.avg_down = avg_downs
        self.attention = _per_stage("attention", attention, num_stages, lambda _, a: a)
        self.head_hidden = head_hidden

        stem_channels = scaled(stem_width if stem_width is not None else widths[0])
        stem_modules, stem_stride = make_stem(stem, in_chans, stem_channels, act_layer)
        for name, module in stem_modules.items():
            self.add_module(name, module)

        in_planes = stem_channels
        stage_names = []
        for i, (num_blocks, planes) in enumerate(zip(layers, widths, strict=True)):
            stage_shortcut = None if shortcut is None else Shortcut(shortcut, avg_downs[i])
            stage = []
            for j in range(num_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                stage.append(
                    block(
                        in_planes,
                        scaled(planes),
                        stride,
                        shortcut=stage_shortcut,
                        act=act_layer,
                        attn_layer=attn_layers[i],
                        **extra_args,
                    )
                )
                in_planes = scaled(planes) * block.expansion
            stage_names.append(f"layer{i + 1}")
            self.add_module(stage_names[-1], nn.Sequential(*stage))

        self.stage_names: tuple[str, ...] = tuple(stage_names)
        self.num_features = in_planes
        self.total_stride = stem_stride * 2 ** (num_stages - 1)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = make_head(self.num_features, num_classes, head_hidden, dropout)

        self._init_weights(zero_init_residual)

    @staticmethod
    def _block_options(
        block: type, block_args: dict[str, Any] | None, **options: Any
    ) -> dict[str, Any]:
        """Options passed to every block: ``block_args`` plus those set away from the default."""
        defaults = {"separable": False, "stride_in_1x1": False, "groups": 1, "base_width": 64}
        extra = dict(block_args or {})
        extra.update({k: v for k, v in options.items() if v != defaults[k]})
        _check_block_accepts(block, extra)
        return extra

    def _init_weights(self, zero_init_residual: bool) -> None:
        # He (Kaiming) normal init for every conv (attention ones too, as timm) and unit BN,
        # as torchvision; the head's Linear layers keep PyTorch's default uniform init.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # Each residual block starts as the identity (Goyal et al. 2017, +0.2-0.3 %).
            for name in self.stage_names:
                for m in getattr(self, name):
                    if hasattr(m, "zero_init_last"):
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
            hint = " (or use stem='cifar' for small images)" if self.stem_type != "cifar" else ""
            raise ValueError(
                f"input of {height}x{width} pixels is too small for this network: it downsamples "
                f"by {self.total_stride} in total, so H and W must be at least "
                f"{self.total_stride}{hint}"
            )

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (N, in_chans, H, W) -> last feature map (N, num_features, H / s, W / s)."""
        # torch.fx (create_feature_extractor) traces with Proxy objects, which have no values
        # to check: the check runs on real and meta tensors and stays out of traced graphs.
        if not isinstance(x, torch.fx.Proxy):
            self.check_input(x)
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Feature map (N, num_features, h, w) -> logits (N, num_classes).

        ``pre_logits=True`` returns the input of the head's last Linear layer instead: the
        pooled features (N, num_features) (after dropout, if any) or, with a hidden head
        layer, its output (N, head_hidden).
        """
        x = torch.flatten(self.avgpool(x), 1)
        if not pre_logits:
            return self.fc(x)
        if isinstance(self.fc, nn.Sequential):
            for layer in list(self.fc)[:-1]:
                x = layer(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(
        self, num_classes: int, hidden: int | None = None, dropout: float = 0.0
    ) -> None:
        """Replace the head ``fc`` by a new, freshly initialised one (for transfer learning).

        ``nn.Linear(num_features, num_classes)`` when ``hidden`` is None and ``dropout`` is 0,
        else an ``nn.Sequential`` (see :func:`helpers.models.heads.make_head`). The new head is
        created on the device and with the dtype of the old one, and is trainable.
        """
        old = next(self.fc.parameters(), None)
        head = make_head(self.num_features, num_classes, hidden, dropout)
        if old is not None:
            head = head.to(device=old.device, dtype=old.dtype)
        self.fc = head
        self.num_classes = num_classes
        self.head_hidden = hidden
