"""ResNet models for the course: one general :class:`ResNet` class and a builder per named model.

The layout follows torchvision's ``models/resnet.py`` (same module names, so torchvision's
ImageNet weights load with ``strict=True``); the options compose as in timm's ``resnet.py``::

    resnet34()                                   # torchvision's ResNet34 (v1.5, option B)
    resnet50(stride_in_1x1=True)                 # original v1 bottleneck (stride on the 1x1)
    resnet56()                                   # He et al. 2016, section 4.2 (CIFAR, option A)
    plain56()                                    # the same net without shortcuts
    resnet34(stem="cifar", num_classes=10)       # ResNet34 for 32x32 images
    resnet34(act="silu", width=0.5, separable=True, dropout=0.2)   # ablation variants
    resnet50(avg_down=(False, False, False, True))                 # avg-pool stage-4 shortcut
    resnet20(attention=("se", "se", "cbam"))     # attention per stage
    resnet50d(), se_resnet50(), cbam_resnet50(), ta_resnet50(10)   # timm / paper variants

Keyword options of every builder (and of :class:`ResNet`, whose docstring documents each
one); "per stage" options take one value or a tuple with one value per stage (4 in the
ImageNet layout, 3 in the CIFAR layout):

    num_classes, in_chans          classifier outputs, input channels
    stem                           "imagenet" (7x7/2 conv + 3x3/2 max-pool), "cifar" (3x3/1) or
                                   "deep" (ResNet-C: three 3x3 convs 32-32-64 + max-pool)
    shortcut                       "A" zero-padded identity, "B" projection where the shape
                                   changes, "C" projection everywhere, None: a plain net
    avg_down (per stage)           ResNet-D projection: 2x2 avg-pool, then 1x1 stride-1 conv + BN
    attention (per stage)          None, "se", "cbam", "channel", "spatial", an nn.Module class
                                   or a factory channels -> module (in each block, as ``se``)
    act                            "relu", "leaky_relu", "silu", "gelu", ... or an nn.Module
                                   class / zero-argument factory
    width, widths, stem_width      width multiplier, channels per stage, stem channels
    block                          (ResNet only) any class following the block protocol
                                   of :mod:`helpers.models.blocks`
    stride_in_1x1                  Bottleneck only: ResNet v1 stride placement
    groups, base_width             Bottleneck only: grouped / wider 3x3 conv (ResNeXt, WRN)
    separable                      depthwise-separable 3x3 convolutions in the blocks
    block_args                     dict of further keyword arguments for every block
    head_hidden, dropout           head ``fc``: optional hidden layer (+ ReLU), dropout before
                                   the last Linear
    zero_init_residual             last BN of each residual branch starts at zero (Goyal et al.)

Every model has ``forward_features(x)`` (N, num_features, h, w), ``forward_head(x,
pre_logits=False)``, ``reset_classifier(num_classes, hidden=None, dropout=0.0)``,
``num_features``, ``stage_names`` (``("layer1", ..., "layer4")``) and ``total_stride``.

Shapes: every model maps x: (N, in_chans, H, W) float to logits (N, num_classes), with H and
W at least ``model.total_stride`` (32 for the ImageNet layout, 4 for the CIFAR layout).
"""

from helpers.models.attention import (
    ATTENTIONS,
    CBAM,
    ChannelAttention,
    SpatialAttention,
    SqueezeExcitation,
    get_attention_layer,
    make_divisible,
)
from helpers.models.blocks import (
    ACTIVATIONS,
    BasicBlock,
    Bottleneck,
    SeparableConv2d,
    get_act_layer,
)
from helpers.models.builders import (
    cbam_resnet50,
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
    resnet50d,
    resnet56,
    resnet101,
    resnet110,
    resnet152,
    resnext50_32x4d,
    se_resnet50,
    ta_resnet50,
    wide_resnet50_2,
)
from helpers.models.heads import make_head
from helpers.models.resnet import ResNet
from helpers.models.shortcuts import (
    SHORTCUTS,
    Shortcut,
    ZeroPadShortcut,
    avg_pool_projection,
    make_shortcut,
    projection,
)
from helpers.models.stems import STEMS, make_stem

__all__ = [
    "ACTIVATIONS",
    "ATTENTIONS",
    "CBAM",
    "SHORTCUTS",
    "STEMS",
    "BasicBlock",
    "Bottleneck",
    "ChannelAttention",
    "ResNet",
    "SeparableConv2d",
    "Shortcut",
    "SpatialAttention",
    "SqueezeExcitation",
    "ZeroPadShortcut",
    "avg_pool_projection",
    "cbam_resnet50",
    "create",
    "get_act_layer",
    "get_attention_layer",
    "list_models",
    "make_divisible",
    "make_head",
    "make_shortcut",
    "make_stem",
    "plain18",
    "plain20",
    "plain32",
    "plain34",
    "plain44",
    "plain56",
    "plain110",
    "projection",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet34",
    "resnet44",
    "resnet50",
    "resnet50d",
    "resnet56",
    "resnet101",
    "resnet110",
    "resnet152",
    "resnext50_32x4d",
    "se_resnet50",
    "ta_resnet50",
    "wide_resnet50_2",
]
