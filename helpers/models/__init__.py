"""ResNet models for the course: one general :class:`ResNet` class and a builder per named model.

The layout follows torchvision's ``models/resnet.py`` (same module names, so torchvision's
ImageNet weights load with ``strict=True``); the options compose as in timm's ``resnet.py``::

    resnet34()                                   # torchvision's ResNet34 (v1.5, option B)
    resnet50(stride_in_1x1=True)                 # original v1 bottleneck (stride on the 1x1)
    resnet56()                                   # He et al. 2016, section 4.2 (CIFAR, option A)
    plain56()                                    # the same net without shortcuts
    resnet34(stem="cifar", num_classes=10)       # ResNet34 for 32x32 images
    resnet34(act="silu", width=0.5, separable=True, dropout=0.2)   # ablation variants

Keyword options of every builder (and of :class:`ResNet`):

    num_classes, in_chans          classifier outputs, input channels
    stem                           "imagenet" (7x7/2 conv + 3x3/2 max-pool) or "cifar" (3x3/1)
    shortcut                       "A" zero-padded identity, "B" projection where the shape
                                   changes, "C" projection everywhere, None: a plain net
    act                            "relu", "leaky_relu", "silu", "gelu", ... or an nn.Module
                                   class / zero-argument factory
    width, widths, stem_width      width multiplier, channels per stage, stem channels
    stride_in_1x1                  Bottleneck only: ResNet v1 stride placement
    separable                      depthwise-separable 3x3 convolutions in the blocks
    dropout                        dropout probability before the final fc layer
    zero_init_residual             last BN of each residual branch starts at zero (Goyal et al.)

Shapes: every model maps x: (N, in_chans, H, W) float to logits (N, num_classes), with H and
W at least ``model.total_stride`` (32 for the ImageNet layout, 4 for the CIFAR layout).
"""

from .blocks import (
    ACTIVATIONS,
    SHORTCUTS,
    BasicBlock,
    Bottleneck,
    SeparableConv2d,
    ZeroPadShortcut,
    get_act_layer,
    make_shortcut,
)
from .resnet import (
    STEMS,
    ResNet,
    create,
    list_models,
    plain18,
    plain20,
    plain32,
    plain34,
    plain44,
    plain56,
    plain110,
    resnet18,
    resnet20,
    resnet32,
    resnet34,
    resnet44,
    resnet50,
    resnet56,
    resnet101,
    resnet110,
    resnet152,
)

__all__ = [
    "ACTIVATIONS",
    "SHORTCUTS",
    "STEMS",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "SeparableConv2d",
    "ZeroPadShortcut",
    "create",
    "get_act_layer",
    "list_models",
    "make_shortcut",
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
