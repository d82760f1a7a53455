"""One builder function per named model, registered by name for :func:`create`.

Each builder returns a :class:`ResNet` and takes every keyword option of it; the options that
define the named model (its attention, its stem ...) are fixed, and passing another value for
one of them is an error that names the general builder to use instead.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from helpers.models.attention import CBAM
from helpers.models.blocks import BasicBlock, Bottleneck
from helpers.models.resnet import ResNet

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


# --- "Bag of Tricks", attention and the seed papers' variants ---------------------------------


def _fix(name: str, kwargs: dict[str, Any], **fixed: Any) -> dict[str, Any]:
    """Set the options that define model ``name``; refuse a different value for one of them."""
    for key, value in fixed.items():
        if key in kwargs and kwargs[key] != value:
            raise ValueError(
                f"{name} sets {key}={value!r}; got {key}={kwargs[key]!r} (build the variant "
                f"from the general builder instead, e.g. resnet50({key}=...))"
            )
        kwargs[key] = value
    return kwargs


@_register
def resnet50d(**kwargs: Any) -> ResNet:
    """ResNet-50-D (He et al. 2019, "Bag of Tricks", Fig. 2): deep stem, avg-pool downsampling.

    ``stem="deep"`` (ResNet-C: three 3x3 convs, 32-32-64) and ``avg_down=True`` in every stage
    (ResNet-D: 2x2 average pool before a stride-1 1x1 projection); the ResNet-B change (stride
    on the 3x3 conv) is the default. Loads timm's ``resnet50d`` weights (25,576,264 parameters).
    """
    return resnet50(**_fix("resnet50d", kwargs, stem="deep", avg_down=True))


@_register
def se_resnet50(**kwargs: Any) -> ResNet:
    """SE-ResNet-50 (Hu et al. 2018): a squeeze-and-excitation module in every bottleneck.

    Loads timm's ``seresnet50`` weights (28,088,024 parameters; the SE paper's Table 2 gives
    28.1 M). The SE hidden width is timm's ``make_divisible(C / 16, 8)``.
    """
    return resnet50(**_fix("se_resnet50", kwargs, attention="se"))


@_register
def cbam_resnet50(mlp_bias: bool = True, **kwargs: Any) -> ResNet:
    """CBAM-ResNet-50 (Woo et al. 2018): channel, then spatial attention in every bottleneck.

    ``mlp_bias=True`` is the paper's official code (28,089,624 parameters, the paper's 28.09 M);
    ``mlp_bias=False`` is timm's ``resnet50`` with ``block_args=dict(attn_layer="cbam")``
    (28,073,576 parameters), whose weights then load.
    """
    return resnet50(**_fix("cbam_resnet50", kwargs, attention=partial(CBAM, mlp_bias=mlp_bias)))


@_register
def ta_resnet50(
    num_classes: int = 1000, head_hidden: int = 512, dropout: float = 0.5, **kwargs: Any
) -> ResNet:
    """TA-ResNet50: ResNet50 with CBAM in every bottleneck and a hidden-layer head with Dropout.

    From "Research on Application of Improved ResNet Network Based on Transfer Learning" (2024):
    ResNet50 with CBAM (channel and spatial attention; the paper's code-based CBAM, MLP with
    bias) in every bottleneck and a redesigned head ``fc``: Linear(2048, 512) -> ReLU ->
    Dropout(0.5) -> Linear(512, num_classes). The paper describes its head only in words (a
    redesigned fully connected layer with Dropout), without a layer table: hidden width 512
    and rate 0.5 are this course's concrete reading of it (``head_hidden=``, ``dropout=``
    change them). ``mlp_bias=False`` as :func:`cbam_resnet50`.
    """
    mlp_bias = kwargs.pop("mlp_bias", True)
    kwargs = _fix("ta_resnet50", kwargs, attention=partial(CBAM, mlp_bias=mlp_bias))
    return resnet50(num_classes=num_classes, head_hidden=head_hidden, dropout=dropout, **kwargs)


@_register
def resnext50_32x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-50 32x4d (Xie et al. 2017): 3x3 convs in 32 groups of 4 channels per 64 planes.

    The bottleneck's 3x3 conv is grouped (``groups=32, base_width=4``); torchvision-compatible
    (25,028,904 parameters).
    """
    return resnet50(**_fix("resnext50_32x4d", kwargs, groups=32, base_width=4))


@_register
def wide_resnet50_2(**kwargs: Any) -> ResNet:
    """Wide ResNet-50-2 (Zagoruyko & Komodakis 2016): bottlenecks twice as wide inside.

    ``base_width=128``: the 1x1 -> 3x3 -> 1x1 inner width doubles, the block outputs do not;
    torchvision-compatible (68,883,240 parameters).
    """
    return resnet50(**_fix("wide_resnet50_2", kwargs, base_width=128))
