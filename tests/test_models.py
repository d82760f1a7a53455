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
    assert block.se.channels == 16
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
    with pytest.raises(ValueError, match="BasicBlock has no option 'stride_in_1x1'"):
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


def test_dropout_is_part_of_the_head() -> None:
    model = models.resnet20(dropout=0.3)
    assert isinstance(model.fc, nn.Sequential)
    assert isinstance(model.fc[0], nn.Dropout) and model.fc[0].p == 0.3
    assert isinstance(model.fc[1], nn.Linear) and model.fc[1].out_features == 10
    assert isinstance(models.resnet20().fc, nn.Linear)
    assert [n for n, _ in model.named_children()][-2:] == ["avgpool", "fc"]


def test_custom_depth_and_in_chans() -> None:
    model = ResNet(BasicBlock, [1, 2], widths=(8, 16), stem="cifar", in_chans=1, num_classes=4)
    assert model.stage_names == ("layer1", "layer2") and model.total_stride == 2
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
        ({"stem": "tiny"}, "stem must be one of"),
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


# --- builders verified against timm and torchvision ---------------------------------------------


def compare_outputs(ours: nn.Module, reference: nn.Module) -> float:
    """Max |ours(x) - reference(x)| in eval mode on a 2 x 3 x 64 x 64 batch (a real output)."""
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference.eval()(x)
        got = ours.eval()(x)
    assert got.shape == expected.shape
    assert torch.isfinite(got).all() and got.std() > 0
    return (got - expected).abs().max().item()


TIMM_CASES = [
    # (ours, our options, timm model, timm options, parameters)
    ("resnet50d", {}, "resnet50d", {}, 25_576_264),
    ("se_resnet50", {}, "seresnet50", {}, 28_088_024),
    (
        "cbam_resnet50",
        {"mlp_bias": False},
        "resnet50",
        {"block_args": {"attn_layer": "cbam"}},
        28_073_576,
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "timm_name", "timm_kwargs", "params"), TIMM_CASES)
def test_matches_timm(name: str, kwargs: dict, timm_name: str, timm_kwargs: dict, params: int):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = timm.create_model(timm_name, pretrained=False, **timm_kwargs)  # no download
    randomise_(reference)
    ours = models.create(name, **kwargs)
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert n_params(ours) == n_params(reference) == params
    assert compare_outputs(ours, reference) < 1e-5


@pytest.mark.parametrize("name", ["resnext50_32x4d", "wide_resnet50_2"])
def test_block_structure_and_width_match_torchvision(name: str) -> None:
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)()
    randomise_(reference)
    ours = models.create(name)
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert n_params(ours) == n_params(reference)
    assert compare_outputs(ours, reference) < 1e-5


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("cbam_resnet50", {}, 28_089_624),  # Woo et al. 2018, Table 1: 28.09 M
        ("cbam_resnet50", {"mlp_bias": False}, 28_073_576),
        ("resnet50", {"avg_down": (False, False, False, True)}, 25_557_032),
        ("resnext50_32x4d", {}, 25_028_904),
        ("wide_resnet50_2", {}, 68_883_240),
    ],
)
def test_variant_parameter_counts(name: str, kwargs: dict, expected: int) -> None:
    assert n_params(build_meta(name, **kwargs)) == expected


def test_avg_pool_downsampling_in_stage_4_only() -> None:
    model = build_meta("resnet50", avg_down=(False, False, False, True))
    assert model.avg_down == (False, False, False, True)
    pool = model.layer4[0].downsample[0]
    assert isinstance(pool, nn.AvgPool2d)
    assert pool.kernel_size == pool.stride == 2 and pool.ceil_mode
    assert not pool.count_include_pad
    assert model.layer4[0].downsample[1].stride == (1, 1)  # the 1x1 conv no longer skips pixels
    assert model.layer3[0].downsample[0].stride == (2, 2)  # stages 1-3: torchvision's option B
    keys = set(model.state_dict())
    assert {"layer4.0.downsample.1.weight", "layer4.0.downsample.2.running_var"} <= keys
    assert {"layer3.0.downsample.0.weight", "layer3.0.downsample.1.running_var"} <= keys


def test_avg_pool_projection_sees_every_pixel() -> None:
    shortcut = models.avg_pool_projection(2, 2, stride=2).eval()
    with torch.no_grad():
        shortcut[1].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    x = torch.zeros(1, 2, 5, 5)
    x[0, 0, 1, 1] = 4.0  # a position a stride-2 1x1 conv never reads
    out = shortcut(x)
    assert out.shape == (1, 2, 3, 3)  # ceil(5 / 2)
    bn = shortcut[2]
    expected = 1.0 / torch.sqrt(bn.running_var[0] + bn.eps)  # 4 / 4 pixels, then BN
    assert out[0, 0, 0, 0].item() == pytest.approx(expected.item(), rel=1e-5)
    # The border window has 1 pixel (count_include_pad=False): its mean is the pixel itself.
    x = torch.zeros(1, 2, 5, 5)
    x[0, 0, 4, 4] = 1.0
    assert shortcut(x)[0, 0, 2, 2].item() == pytest.approx(expected.item(), rel=1e-5)
    assert models.projection(2, 2, stride=2)(x)[0, 0, 2, 2].abs().item() > 0  # reads (4, 4)


def test_deep_stem_keys_and_widths() -> None:
    model = build_meta("resnet50d")
    stem_keys = [k for k in model.state_dict() if k.startswith("conv1.")]
    assert sorted({k.split(".")[1] for k in stem_keys}) == ["0", "1", "3", "4", "6"]
    assert [model.conv1[i].out_channels for i in (0, 3, 6)] == [32, 32, 64]
    assert model.conv1[0].stride == (2, 2) and model.total_stride == 32
    assert all(
        b.downsample[0].__class__ is not nn.Conv2d for b in (model.layer2[0], model.layer4[0])
    )
    x = torch.empty(2, 3, 64, 64, device="meta")
    assert model.forward_features(x).shape == (2, 2048, 2, 2)


def test_named_models_refuse_a_conflicting_defining_option() -> None:
    with pytest.raises(ValueError, match=r"se_resnet50 sets attention='se'"):
        models.se_resnet50(attention="cbam")
    with pytest.raises(ValueError, match="resnet50d sets stem='deep'"):
        models.resnet50d(stem="imagenet")


def test_ta_resnet50_head_and_attention() -> None:
    model = build_meta("ta_resnet50", num_classes=43)
    fc = model.fc
    assert [type(m) for m in fc] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert (fc[0].in_features, fc[0].out_features) == (2048, 512)
    assert fc[2].p == 0.5 and (fc[3].in_features, fc[3].out_features) == (512, 43)
    bottlenecks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert len(bottlenecks) == 16 and all(isinstance(b.se, models.CBAM) for b in bottlenecks)
    assert model.num_features == 2048 and model.head_hidden == 512
    x = torch.empty(2, 2048, 2, 2, device="meta")
    assert model.forward_head(x).shape == (2, 43)
    assert model.forward_head(x, pre_logits=True).shape == (2, 512)


# --- composable options --------------------------------------------------------------------------


def test_attention_per_stage() -> None:
    model = models.resnet20(attention=(None, "se", "cbam"))
    assert model.attention == (None, "se", "cbam")
    assert all(b.se is None for b in model.layer1)
    assert all(isinstance(b.se, models.SqueezeExcitation) for b in model.layer2)
    assert all(isinstance(b.se, models.CBAM) for b in model.layer3)
    assert model.layer2[0].se.fc1.out_channels == 8  # make_divisible(32 / 16, 8)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    small = models.resnet18(stem="cifar", width=0.25, attention="se", num_classes=10)
    assert small(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_user_attention_class() -> None:
    class Halve(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.full((channels, 1, 1), 0.5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.scale

    model = models.resnet20(attention=Halve)
    assert [b.se.scale.shape[0] for b in model.layer1 + model.layer3] == [16] * 3 + [64] * 3
    assert n_params(model) == CIFAR_COUNTS["resnet20"] + 3 * (16 + 32 + 64)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"attention": "eca"}, ValueError, r"unknown attention 'eca'; known: \['cbam', .*'se'"),
        ({"attention": ("se", "se")}, ValueError, "3 stages, got 2 values"),
        ({"avg_down": (True,) * 4}, ValueError, "one per stage: this net has 3 stages"),
        ({"avg_down": 1}, ValueError, "avg_down must be True or False"),
        ({"avg_down": True}, ValueError, "option 'A' has none"),  # CIFAR nets use option A
        ({"attention": nn.ReLU()}, TypeError, "pass its class"),
        ({"attention": 3}, TypeError, "attention must be None, a name"),
        ({"head_hidden": 0}, ValueError, "head_hidden must be an int >= 1"),
        ({"groups": 2}, ValueError, "BasicBlock has no option 'groups'"),
    ],
)
def test_invalid_composable_options(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        models.resnet20(**kwargs)


def test_avg_down_everywhere_and_plain_nets() -> None:
    model = build_meta("resnet20", shortcut="B", avg_down=True)
    assert [
        isinstance(b.downsample[0], nn.AvgPool2d) for b in (model.layer2[0], model.layer3[0])
    ] == [True, True]
    with pytest.raises(ValueError, match="a plain net has none"):
        models.plain20(avg_down=(False, True, True))
    with pytest.raises(ValueError, match="separable=True already groups"):
        models.resnet50(separable=True, groups=32)


def test_any_block_class_following_the_protocol() -> None:
    class PreActBlock(nn.Module):  # BN-act-conv ordering (He et al. 2016b), single conv
        expansion = 2

        def __init__(self, in_planes, planes, stride=1, *, shortcut, act, attn_layer):
            super().__init__()
            out = planes * self.expansion
            self.bn = nn.BatchNorm2d(in_planes)
            self.act = act()
            self.conv = nn.Conv2d(in_planes, out, 3, stride, 1, bias=False)
            self.se = attn_layer(out) if attn_layer else None
            self.downsample = models.make_shortcut(shortcut, in_planes, out, stride)

        def forward(self, x):
            out = self.conv(self.act(self.bn(x)))
            out = out if self.se is None else self.se(out)
            return out + (x if self.downsample is None else self.downsample(x))

    model = ResNet(PreActBlock, [1, 1, 1], widths=(8, 16, 32), stem="cifar", attention="se")
    assert model.num_features == 64 and model.fc.in_features == 64
    assert isinstance(model.layer2[0].downsample, nn.Sequential)  # option B: a projection
    assert isinstance(model.layer1[0].se, models.SqueezeExcitation)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 1000)
    with pytest.raises(ValueError, match="PreActBlock has no option 'separable'"):
        ResNet(PreActBlock, [1], widths=(8,), separable=True)
    with pytest.raises(TypeError, match="int attribute `expansion`"):
        ResNet(nn.Module, [1])


def test_shortcut_factory_per_stage() -> None:
    model = build_meta("resnet34", avg_down=(False, True, False, True))
    kinds = [type(getattr(model, s)[0].downsample) for s in ("layer2", "layer3", "layer4")]
    assert kinds == [nn.Sequential] * 3
    assert isinstance(model.layer2[0].downsample[0], nn.AvgPool2d)
    assert isinstance(model.layer3[0].downsample[0], nn.Conv2d)
    factory = models.Shortcut("C", avg_down=True)
    assert isinstance(factory(8, 8, 1)[0], nn.Identity)  # stride 1: no pooling, keys as timm
    assert models.Shortcut("B")(8, 8, 1) is None


# --- head and model API ---------------------------------------------------------------------------


def test_head_options_and_pre_logits() -> None:
    model = models.resnet20(head_hidden=32, dropout=0.2).eval()
    assert [type(m) for m in model.fc] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    features = model.forward_features(torch.randn(2, 3, 8, 8))
    assert features.shape == (2, model.num_features, 2, 2) and model.num_features == 64
    hidden = model.forward_head(features, pre_logits=True)
    assert hidden.shape == (2, 32) and (hidden >= 0).all()  # after the ReLU
    assert torch.allclose(model.fc[-1](hidden), model.forward_head(features))
    pooled = models.resnet20().forward_head(features, pre_logits=True)
    assert torch.allclose(pooled, features.mean((2, 3)))


def test_reset_classifier() -> None:
    model = models.resnet20().double()
    old_fc = model.fc
    model.reset_classifier(5)
    assert isinstance(model.fc, nn.Linear) and model.fc is not old_fc
    assert (model.fc.in_features, model.fc.out_features) == (64, 5) and model.num_classes == 5
    assert model.fc.weight.dtype == torch.float64  # follows the model's dtype (and device)
    model.reset_classifier(7, hidden=16, dropout=0.5)
    assert [type(m) for m in model.fc] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert model.fc[-1].out_features == 7 and model.fc[2].p == 0.5 and model.head_hidden == 16
    model.reset_classifier(3, dropout=0.1)
    assert [type(m) for m in model.fc] == [nn.Dropout, nn.Linear]
    assert model(torch.randn(2, 3, 8, 8, dtype=torch.float64)).shape == (2, 3)
    with pytest.raises(ValueError, match="dropout must be a probability"):
        model.reset_classifier(3, dropout=1.5)
    with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
        model.reset_classifier(0)


def test_stage_names_and_num_features() -> None:
    imagenet = ("layer1", "layer2", "layer3", "layer4")
    cases = {"resnet18": 512, "resnet50": 2048, "resnet20": 64, "ta_resnet50": 2048}
    for name, features in cases.items():
        model = build_meta(name)
        assert model.num_features == features
        assert model.stage_names == (imagenet[:3] if name == "resnet20" else imagenet)
        last_block = getattr(model, model.stage_names[-1])[-1]
        last_bn = last_block.bn2 if isinstance(last_block, BasicBlock) else last_block.bn3
        assert last_bn.num_features == features
        children = [n for n, _ in model.named_children()]
        stem = children[: children.index(model.stage_names[0])]
        assert stem == ["conv1", "bn1", "act1", "maxpool"] and children[-1] == "fc"


DEEP = {"resnet101", "resnet110", "resnet152", "plain110"}  # a second or more each to trace


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in DEEP else n for n in models.list_models()],
)
def test_feature_extractor_traces_every_builder(name: str) -> None:
    from torchvision.models.feature_extraction import create_feature_extractor

    model = build_meta(name)
    last = model.stage_names[-1]
    extractor = create_feature_extractor(model, {last: "feat"})
    size = 2 * model.total_stride
    x = torch.empty(2, 3, size, size, device="meta")
    assert extractor(x)["feat"].shape == model.forward_features(x).shape


def test_feature_extractor_gives_the_same_features() -> None:
    from torchvision.models.feature_extraction import create_feature_extractor

    model = models.resnet18(stem="deep", width=0.25, attention="cbam", avg_down=True).eval()
    extractor = create_feature_extractor(model, {"layer3": "mid", "layer4": "feat"})
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = extractor(x)
        assert torch.equal(out["feat"], model.forward_features(x))
    assert out["mid"].shape == (2, 64, 2, 2)
    with pytest.raises(ValueError, match="too small"):  # the eager model still checks its input
        model(torch.randn(1, 3, 16, 16))


def test_new_names_are_registered() -> None:
    names = set(models.list_models())
    new = {"resnet50d", "se_resnet50", "cbam_resnet50", "ta_resnet50", "resnext50_32x4d"}
    assert new | {"wide_resnet50_2"} <= names
    assert models.create("ta_resnet50", num_classes=10, width=0.25).fc[-1].out_features == 10
