"""Shortcut branches of residual blocks: options A, B, C (He et al. 2016) and ResNet-D.

A :class:`Shortcut` is the factory one stage uses for all its blocks: called with a block's
``(in_channels, out_channels, stride)`` it returns the shortcut module, or ``None`` where the
shortcut is the plain identity. Projections are keyed as in torchvision (``downsample.0`` conv,
``downsample.1`` BN) or, with average pooling, as in timm (``downsample.0`` pool,
``downsample.1`` conv, ``downsample.2`` BN), so both libraries' state dicts load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

# "A" zero-padded identity, "B" projection where the shape changes, "C" projection everywhere,
# None: no shortcut at all (a plain net).
SHORTCUTS = ("A", "B", "C", None)


def check_shortcut(shortcut: Any) -> str | None:
    """Return ``shortcut`` if it is one of :data:`SHORTCUTS`, else raise a ValueError."""
    if shortcut not in SHORTCUTS:
        raise ValueError(
            f"shortcut must be 'A' (zero-padded identity), 'B' (projection where the shape "
            f"changes), 'C' (projection everywhere) or None (plain net), got {shortcut!r}"
        )
    return shortcut


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


def projection(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """Options B/C: 1x1 conv with ``stride`` + BN (keys ``0``, ``1`` as torchvision).

    With stride 2 the 1x1 conv reads one input position in four and ignores the other three.
    x: (N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride)).
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
    )


def avg_pool_projection(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """ResNet-D (He et al. 2019, "Bag of Tricks"): 2x2 average pool, then 1x1 stride-1 conv + BN.

    Every input position reaches the output. Keys ``1`` (conv) and ``2`` (BN) as timm's
    ``downsample_avg``; the pool is ``AvgPool2d(2, ceil_mode=True, count_include_pad=False)``
    (an ``nn.Identity`` at stride 1). x: (N, C_in, H, W) -> (N, C_out, ceil(H / 2), ceil(W / 2)).
    """
    if stride == 1:
        pool: nn.Module = nn.Identity()
    else:
        pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
    return nn.Sequential(
        pool,
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
    )


@dataclass(frozen=True)
class Shortcut:
    """The shortcut factory of one stage: ``Shortcut("B", avg_down=True)(64, 128, 2)``.

    ``kind`` is "A", "B" or "C" (see :data:`SHORTCUTS`); ``avg_down=True`` makes every
    projection an :func:`avg_pool_projection` (ResNet-D). Calling it with a block's
    ``(in_channels, out_channels, stride)`` returns the module, or ``None`` for the identity.
    """

    kind: str = "B"
    avg_down: bool = False

    def __post_init__(self) -> None:
        if check_shortcut(self.kind) is None:
            raise ValueError("a plain net has no Shortcut: pass shortcut=None to the block")
        if not isinstance(self.avg_down, bool):
            raise ValueError(f"avg_down must be True or False, got {self.avg_down!r}")
        if self.avg_down and self.kind == "A":
            raise ValueError(
                "avg_down replaces the strided 1x1 conv of a projection shortcut; option 'A' "
                "has none: use shortcut 'B' or 'C' with avg_down"
            )

    def __call__(self, in_channels: int, out_channels: int, stride: int = 1) -> nn.Module | None:
        same_shape = stride == 1 and in_channels == out_channels
        if same_shape and self.kind in ("A", "B"):
            return None
        if self.kind == "A":
            return ZeroPadShortcut(in_channels, out_channels, stride)
        build = avg_pool_projection if self.avg_down else projection
        return build(in_channels, out_channels, stride)


# What a block accepts as ``shortcut=``: a name, a factory such as :class:`Shortcut`, or None.
ShortcutSpec = str | Callable[[int, int, int], nn.Module | None] | None


def make_shortcut(
    kind: ShortcutSpec, in_channels: int, out_channels: int, stride: int = 1
) -> nn.Module | None:
    """The shortcut branch of a block, or ``None`` where it is the identity or absent.

    ``kind`` is a name from :data:`SHORTCUTS`, a :class:`Shortcut` or any callable with its
    signature; ``None`` (plain net) returns ``None`` too (the caller knows whether the block
    is residual at all).
    """
    if kind is None:
        return None
    if isinstance(kind, str) or not callable(kind):
        kind = Shortcut(check_shortcut(kind))
    return kind(in_channels, out_channels, stride)
