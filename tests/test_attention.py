"""Tests for helpers.models.attention (SE and CBAM against timm) and inspection.attention_maps."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from helpers import inspection, models
from helpers.models import CBAM, ChannelAttention, SpatialAttention, SqueezeExcitation

timm_layers = pytest.importorskip("timm.layers")
timm_cbam = pytest.importorskip("timm.layers.cbam")


def randomise_bn_(module: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


@pytest.mark.parametrize("channels", [8, 16, 24, 64, 100, 256, 1000, 2048])
@pytest.mark.parametrize("divisor", [1, 8])
def test_make_divisible_matches_timm(channels: int, divisor: int) -> None:
    ours = models.make_divisible(channels / 16, divisor)
    assert ours == timm_layers.make_divisible(channels / 16, divisor, round_limit=0.0)
    assert models.make_divisible(64 / 16, 8) == 8  # not the SE paper's 64 / 16 = 4


ATTENTION_CASES = [
    # (ours, timm's, channels)
    (SqueezeExcitation, timm_layers.SEModule, 64),
    (partial(ChannelAttention, mlp_bias=False), timm_cbam.ChannelAttn, 64),
    (partial(ChannelAttention, mlp_bias=True), partial(timm_cbam.ChannelAttn, mlp_bias=True), 48),
    (SpatialAttention, lambda c: timm_cbam.SpatialAttn(), 32),
    (partial(CBAM, mlp_bias=False), timm_cbam.CbamModule, 256),
    (CBAM, partial(timm_cbam.CbamModule, mlp_bias=True), 32),
]


@pytest.mark.parametrize(("ours_cls", "timm_cls", "channels"), ATTENTION_CASES)
def test_modules_match_timm(ours_cls, timm_cls, channels: int) -> None:
    torch.manual_seed(0)
    reference = timm_cls(channels)
    randomise_bn_(reference)
    ours = ours_cls(channels)
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, channels, 5, 7)
    with torch.no_grad():
        expected = reference.eval()(x)
        got = ours.eval()(x)
    assert not torch.allclose(got, x)  # the gates really re-weight the input
    assert (got - expected).abs().max().item() < 1e-6


def test_parameter_names_and_hidden_widths() -> None:
    se = SqueezeExcitation(64)
    assert se.fc1.out_channels == 8 and se.fc1.bias is not None  # timm: make_divisible(4, 8)
    assert SqueezeExcitation(256).fc1.out_channels == 16
    cbam = CBAM(256)
    keys = set(cbam.state_dict())
    assert {"channel.fc1.weight", "channel.fc1.bias", "channel.fc2.weight"} <= keys
    assert {"spatial.conv.conv.weight", "spatial.conv.bn.running_var"} <= keys
    assert cbam.channel.fc1.out_channels == 16 and cbam.spatial.conv.conv.kernel_size == (7, 7)
    assert CBAM(256, mlp_bias=False).channel.fc1.bias is None
    assert CBAM(32).channel.fc1.out_channels == 2


def test_gates_are_sigmoids_in_the_right_place() -> None:
    # SE with zero weights and biases: every gate is sigmoid(0) = 0.5.
    se = SqueezeExcitation(16)
    nn.init.zeros_(se.fc2.weight)
    nn.init.zeros_(se.fc2.bias)
    x = torch.randn(2, 16, 4, 4)
    assert torch.allclose(se(x), 0.5 * x)
    # Spatial attention reads [mean, max] over channels, in that order (timm's order).
    spatial = SpatialAttention(kernel_size=1).eval()
    with torch.no_grad():
        spatial.conv.conv.weight.copy_(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
    x = torch.rand(1, 3, 2, 2)
    bn = spatial.conv.bn
    mean_map = (x.mean(1, keepdim=True) - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        assert torch.allclose(spatial(x), x * torch.sigmoid(mean_map), atol=1e-6)
    with pytest.raises(ValueError, match="must be odd"):
        SpatialAttention(kernel_size=4)


def test_attention_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown attention 'bam'; known: \['cbam', 'channel'"):
        models.get_attention_layer("bam")
    with pytest.raises(ValueError, match="rd_ratio must be a number > 0"):
        SqueezeExcitation(16, rd_ratio=0)

    def not_a_module(channels: int):
        return channels

    with pytest.raises(TypeError, match="returned int for 16 channels"):
        models.resnet20(attention=not_a_module)


# --- attention_maps ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cbam_net() -> nn.Module:
    torch.manual_seed(0)
    return models.resnet20(attention=("se", "cbam", "spatial"), width=0.5)


def test_attention_maps_shapes_and_ranges(cbam_net: nn.Module) -> None:
    x = torch.randn(3, 3, 16, 16)
    cbam_net.train()
    maps = inspection.attention_maps(cbam_net, x)
    assert cbam_net.training  # the mode is put back
    assert list(maps) == [f"layer{s}.{b}.se" for s in (1, 2, 3) for b in range(3)]
    se, cbam, spatial = maps["layer1.0.se"], maps["layer2.1.se"], maps["layer3.2.se"]
    assert se.channel.shape == (3, 8) and se.spatial is None
    assert cbam.channel.shape == (3, 16) and cbam.spatial.shape == (3, 1, 8, 8)
    assert spatial.channel is None and spatial.spatial.shape == (3, 1, 4, 4)
    for m in maps.values():
        for gate in (m.channel, m.spatial):
            assert gate is None or ((gate > 0) & (gate < 1)).all()


def test_attention_maps_are_the_weights_applied(cbam_net: nn.Module) -> None:
    x = torch.randn(2, 3, 16, 16)
    inputs = {}
    names = ("layer1.2.se", "layer2.0.se")
    handles = [
        cbam_net.get_submodule(n).register_forward_hook(
            lambda m, args, out, n=n: inputs.__setitem__(n, (args[0].clone(), out.clone()))
        )
        for n in names
    ]
    maps = inspection.attention_maps(cbam_net, x)
    for h in handles:
        h.remove()
    se_in, se_out = inputs["layer1.2.se"]
    assert torch.allclose(se_out, se_in * maps["layer1.2.se"].channel[:, :, None, None])
    cbam_in, cbam_out = inputs["layer2.0.se"]
    m = maps["layer2.0.se"]
    assert torch.allclose(cbam_out, cbam_in * m.channel[:, :, None, None] * m.spatial, atol=1e-6)


def test_attention_maps_remove_their_hooks(cbam_net: nn.Module) -> None:
    inspection.attention_maps(cbam_net, torch.randn(1, 3, 8, 8))
    assert all(not m._forward_hooks for m in cbam_net.modules())


def test_attention_maps_errors() -> None:
    with pytest.raises(ValueError, match="no attention modules"):
        inspection.attention_maps(models.resnet20(width=0.25), torch.randn(1, 3, 8, 8))
    with pytest.raises(TypeError, match="x must be a tensor"):
        inspection.attention_maps(models.resnet20(attention="se"), [1.0])
    model = models.resnet20(attention="se", width=0.25)
    with pytest.raises(ValueError, match="too small"):  # the model's own check; hooks still go
        inspection.attention_maps(model, torch.randn(1, 3, 2, 2))
    assert all(not m._forward_hooks for m in model.modules())
