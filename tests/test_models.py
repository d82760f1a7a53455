"""Tests for helpers.models: torchvision equivalence, published parameter counts, options."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from helpers import models
from helpers.models import BasicBlock, Bottleneck, ResNet, SeparableConv2d, ZeroPadShortcut


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_meta(name: str, **kwargs) -> nn.Module:
    """Build on the meta device: shapes and counts without the cost of initialising weights."""
    with torch.device("meta"):
        return models.create(name, **kwargs)


def randomise_(model: nn.Module, seed: int = 0) -> None:
    """Give every parameter and BN statistic non-default values, so a mis-wired load shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


# --- torchvision equivalence --------------------------------------------------------------

TORCHVISION_CASES = [
    ("resnet18", 64),
    ("resnet34", 64),
    ("resnet50", 64),
    pytest.param("resnet101", 32, marks=pytest.mark.slow),
    pytest.param("resnet152", 32, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "size"), TORCHVISION_CASES)
def test_matches_torchvision(name: str, size: int) -> None:
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)()  # random init, no download
    randomise_(reference)
    ours = models.create(name)
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert n_params(ours) == n_params(reference)

    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected = reference.eval()(x)
        got = ours.eval()(x)
    assert got.shape == (1, 1000)
    assert torch.isfinite(got).all() and got.std() > 0  # a real, non-degenerate output
    assert (got - expected).abs().max().item() < 1e-5


def test_state_dict_keys_and_shapes_match_torchvision_resnet50() -> None:
    with torch.device("meta"):
        reference = torchvision.models.resnet50()
        ours = models.resnet50()
    ref_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert our_shapes == ref_shapes
    assert "layer2.0.downsample.0.weight" in our_shapes
    assert "layer2.0.downsample.1.running_var" in our_shapes


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("resnet101", 44_549_160),
        ("resnet152", 60_192_808),
    ],
)
def test_imagenet_parameter_counts(name: str, expected: int) -> None:
    assert n_params(build_meta(name)) == expected


# --- CIFAR layout (He et al. 2016, section 4.2) ------------------------------------------

CIFAR_COUNTS = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
}


@pytest.mark.parametrize(("name", "expected"), CIFAR_COUNTS.items())
def test_cifar_parameter_counts(name: str, expected: int) -> None:
    model = build_meta(name)
    assert n_params(model) == expected
    assert model.num_classes == 10 and model.shortcut == "A"


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_cifar_nets_have_no_shortcuts(depth: int) -> None:
    plain = build_meta(f"plain{depth}")
    # Option A shortcuts have no parameters, so the plain twin has exactly as many.
    assert n_params(plain) == CIFAR_COUNTS[f"resnet{depth}"]
    blocks = [m for m in plain.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == (depth - 2) // 2
    assert all(not b.residual and b.downsample is None for b in blocks)
    weighted = [m for m in plain.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == depth


def test_plain_imagenet_nets() -> None:
    plain34, resnet34 = build_meta("plain34"), build_meta("resnet34")
    projections = sum(
        n_params(m.downsample) for m in resnet34.modules() if getattr(m, "downsample", None)
    )
    assert n_params(plain34) == n_params(resnet34) - projections
    assert not any(isinstance(m, BasicBlock) and m.residual for m in plain34.modules())
    assert len([m for m in build_meta("plain18").modules() if isinstance(m, BasicBlock)]) == 8
    with pytest.raises(ValueError, match="plain nets have no shortcuts"):
        models.plain20(shortcut="B")


def test_cifar_resnet_shapes() -> None:
    model = models.resnet20()
    assert model.total_stride == 4 and model.min_input_size == 4
    x = torch.randn(2, 3, 32, 32)
    assert model.forward_features(x).shape == (2, 64, 8, 8)
    assert model(x).shape == (2, 10)


# --- blocks and shortcuts ------------------------------------------------------------------


def test_option_a_shortcut_is_parameter_free_zero_padding() -> None:
    shortcut = ZeroPadShortcut(4, 8, stride=2)
    x = torch.randn(2, 4, 7, 7)
    out = shortcut(x)
    assert out.shape == (2, 8, 4, 4)  # ceil(7 / 2) = 4, as a 3x3/2 conv with padding 1
    assert torch.equal(out[:, :4], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 4:]) == 0
    assert n_params(shortcut) == 0
    with pytest.raises(ValueError, match="can only add channels"):
        ZeroPadShortcut(8, 4)


@pytest.mark.parametrize(
    ("shortcut", "projections"), [("A", 0), ("B", 3), ("C", 16)]
)  # ResNet34 has 16 blocks; 3 of them change shape
def test_shortcut_options(shortcut: str, projections: int) -> None:
    model = build_meta("resnet34", shortcut=shortcut)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 16
    proj = [b for b in blocks if isinstance(b.downsample, nn.Sequential)]
    assert len(proj) == projections
    zero_pad = [b for b in blocks if isinstance(b.downsample, ZeroPadShortcut)]
    assert len(zero_pad) == (3 if shortcut == "A" else 0)


def test_plain_block_does_not_add_the_input() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)
    for shortcut, expected in [(None, torch.zeros_like(x)), ("B", torch.relu(x))]:
        block = BasicBlock(8, 8, shortcut=shortcut).eval()
        nn.init.zeros_(block.bn2.weight)  # residual branch outputs exactly bn2.bias = 0
        with torch.no_grad():
            assert torch.allclose(block(x), expected)


def test_attention_slot_acts_on_the_residual_branch() -> None:
    class Zero(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.channels = channels

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 0

    x = torch.randn(2, 16, 8, 8)
    block = Bottleneck(16, 4, attn_layer=Zero).eval()
    assert block.attn.channels == 16
    with torch.no_grad():
        assert torch.allclose(block(x), torch.relu(x))


def test_bottleneck_stride_placement() -> None:
    v15 = Bottleneck(64, 32, stride=2)
    v1 = Bottleneck(64, 32, stride=2, stride_in_1x1=True)
    assert v15.conv1.stride == (1, 1) and v15.conv2.stride == (2, 2)
    assert v1.conv1.stride == (2, 2) and v1.conv2.stride == (1, 1)
    x = torch.randn(1, 64, 16, 16)
    assert v15(x).shape == v1(x).shape == (1, 128, 8, 8)
    model = build_meta("resnet50", stride_in_1x1=True)
    assert model.layer2[0].conv1.stride == (2, 2)
    assert n_params(model) == 25_557_032  # same weights, different wiring
    with pytest.raises(ValueError, match="Bottleneck blocks only"):
        models.resnet34(stride_in_1x1=True)


# --- options ---------------------------------------------------------------------------------


def test_cifar_stem_on_resnet34() -> None:
    model = build_meta("resnet34", stem="cifar", num_classes=10)
    assert model.total_stride == 8
    assert isinstance(model.maxpool, nn.Identity) and model.conv1.kernel_size == (3, 3)
    x = torch.empty(2, 3, 32, 32, device="meta")  # shapes only: no arithmetic
    assert model.forward_features(x).shape == (2, 512, 4, 4)
    assert model(x).shape == (2, 10)


@pytest.mark.parametrize(
    ("act", "module_type"),
    [
        ("relu", nn.ReLU),
        ("leaky_relu", nn.LeakyReLU),
        ("silu", nn.SiLU),
        ("swish", nn.SiLU),
        ("gelu", nn.GELU),
        (nn.Mish, nn.Mish),
        (lambda: nn.LeakyReLU(0.2), nn.LeakyReLU),
    ],
)
def test_activation_swap(act, module_type) -> None:
    model = models.resnet20(act=act)
    acts = [m for m in model.modules() if isinstance(m, module_type)]
    assert len(acts) == 1 + 2 * 9  # stem + two per block
    assert not any(isinstance(m, nn.ReLU) for m in model.modules()) or module_type is nn.ReLU
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_activation_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown activation 'relu6'.*'gelu'.*'silu'"):
        models.resnet20(act="relu6")
    with pytest.raises(TypeError, match="pass its class"):
        models.resnet20(act=nn.ReLU())
    with pytest.raises(TypeError, match=r"expected an nn\.Module"):
        models.resnet20(act=lambda: torch.relu)
    with pytest.raises(TypeError, match="without arguments"):
        models.resnet20(act=nn.Conv2d)


def test_prelu_gets_one_instance_per_layer() -> None:
    model = models.resnet20(act="prelu")
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len({id(p.weight) for p in prelus}) == len(prelus) == 19


def test_zero_init_residual() -> None:
    model = models.resnet20(zero_init_residual=True)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert all(torch.count_nonzero(b.bn2.weight) == 0 for b in blocks)
    assert all(torch.count_nonzero(b.bn1.weight) == b.bn1.weight.numel() for b in blocks)
    bottlenecks = [m for m in build_meta("resnet50").modules() if isinstance(m, Bottleneck)]
    assert len(bottlenecks) == 16
    model50 = models.ResNet(Bottleneck, [1, 1], widths=(8, 16), zero_init_residual=True)
    last_bns = [m.bn3.weight for m in model50.modules() if isinstance(m, Bottleneck)]
    assert len(last_bns) == 2 and all(torch.count_nonzero(w) == 0 for w in last_bns)
    with pytest.raises(ValueError, match="needs residual connections"):
        models.plain20(zero_init_residual=True)


def test_width_multiplier() -> None:
    half = models.resnet20(width=0.5)
    assert half.conv1.out_channels == 8 and half.layer3[0].conv2.out_channels == 32
    assert half.num_features == half.fc.in_features == 32
    # Convolution weights scale with width^2.
    assert 0.2 < n_params(half) / CIFAR_COUNTS["resnet20"] < 0.3
    assert half(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    wide = build_meta("resnet34", widths=(32, 64, 128, 256), stem_width=16)
    assert wide.conv1.out_channels == 16 and wide.layer4[0].conv1.out_channels == 256


def test_separable_convolutions() -> None:
    model = models.resnet20(separable=True)
    separable = [m for m in model.modules() if isinstance(m, SeparableConv2d)]
    assert len(separable) == 18  # both 3x3 convs of the 9 blocks; the stem stays dense
    conv = separable[0]
    assert conv.depthwise.groups == conv.depthwise.in_channels
    assert n_params(model) < CIFAR_COUNTS["resnet20"] / 5
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    bottleneck = build_meta("resnet50", separable=True)
    assert isinstance(bottleneck.layer1[0].conv2, SeparableConv2d)


def test_dropout_before_fc() -> None:
    model = models.resnet20(dropout=0.3)
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.3
    assert isinstance(models.resnet20().dropout, nn.Identity)
    names = [n for n, _ in model.named_children()]
    assert names.index("dropout") == names.index("fc") - 1


def test_custom_depth_and_in_chans() -> None:
    model = ResNet(BasicBlock, [1, 2], widths=(8, 16), stem="cifar", in_chans=1, num_classes=4)
    assert model.stage_names == ["layer1", "layer2"] and model.total_stride == 2
    assert model(torch.randn(3, 1, 5, 5)).shape == (3, 4)


# --- registry --------------------------------------------------------------------------------


def test_list_and_create() -> None:
    names = models.list_models()
    expected = {f"resnet{d}" for d in (18, 34, 50, 101, 152, 20, 32, 44, 56, 110)}
    expected |= {f"plain{d}" for d in (18, 34, 20, 32, 44, 56, 110)}
    assert expected <= set(names) and names == sorted(names)
    model = models.create("resnet32", num_classes=100, act="silu")
    assert model.fc.out_features == 100
    with pytest.raises(ValueError, match=r"unknown model 'resnet35'.*'resnet34'"):
        models.create("resnet35")


# --- bad input --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_resnet18() -> ResNet:
    return models.resnet18(num_classes=3).eval()


def test_wrong_channel_count(small_resnet18: ResNet) -> None:
    with pytest.raises(ValueError, match=r"expected 3 input channels.*got 1"):
        small_resnet18(torch.randn(1, 1, 64, 64))


def test_image_too_small(small_resnet18: ResNet) -> None:
    with pytest.raises(ValueError, match=r"16x16 .*too small.*downsamples by 32.*at least 32"):
        small_resnet18(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="at least 4"):
        models.resnet20()(torch.randn(1, 3, 3, 8))
    assert small_resnet18(torch.randn(1, 3, 32, 32)).shape == (1, 3)  # exactly the minimum


def test_not_a_batch(small_resnet18: ResNet) -> None:
    with pytest.raises(ValueError, match=r"4-D input.*3-D.*unsqueeze"):
        small_resnet18(torch.randn(3, 64, 64))
    with pytest.raises(TypeError, match="floating-point"):
        small_resnet18(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        small_resnet18([[0.0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shortcut": "D"}, "shortcut must be 'A'.*got 'D'"),
        ({"stem": "deep"}, "stem must be one of"),
        ({"dropout": -0.1}, r"dropout must be a probability in \[0, 1\), got -0.1"),
        ({"dropout": 1.0}, "dropout must be a probability"),
        ({"num_classes": 0}, "num_classes must be an int >= 1, got 0"),
        ({"num_classes": 2.5}, "num_classes must be an int"),
        ({"in_chans": 0}, "in_chans must be an int >= 1"),
        ({"width": 0}, "width .* must be a number > 0"),
        ({"widths": (16, 32)}, "widths needs one entry per stage"),
    ],
)
def test_invalid_options(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        models.resnet20(**kwargs)


def test_invalid_structure() -> None:
    with pytest.raises(ValueError, match="at least one stage"):
        ResNet(BasicBlock, [])
    with pytest.raises(ValueError, match=r"layers\[1\] must be an int >= 1, got 0"):
        ResNet(BasicBlock, [1, 0], widths=(8, 8))
    with pytest.raises(TypeError, match="BasicBlock or Bottleneck"):
        ResNet(nn.Conv2d, [1])
