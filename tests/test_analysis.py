"""Tests for helpers.inspection: parameter counts, multiply-adds, shape tables, gradient norms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import inspection, models


def build_meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return models.create(name, **kwargs)


# --- parameters --------------------------------------------------------------------------------


def test_count_parameters_total_and_trainable() -> None:
    model = models.resnet20()
    assert inspection.count_parameters(model) == {"total": 269_722, "trainable": 269_722}
    for p in model.conv1.parameters():
        p.requires_grad_(False)
    assert inspection.count_parameters(model) == {"total": 269_722, "trainable": 269_722 - 432}
    with pytest.raises(TypeError, match=r"expected an nn\.Module"):
        inspection.count_parameters("resnet20")


def test_count_parameters_counts_shared_weights_once() -> None:
    linear = nn.Linear(4, 4)
    shared = nn.Sequential(linear, nn.ReLU(), linear)
    assert inspection.count_parameters(shared)["total"] == 20


def test_parameters_per_stage_resnet34() -> None:
    model = build_meta("resnet34")
    table = inspection.parameters_per_stage(model)
    assert list(table["stage"]) == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    assert table["params"].sum() == 21_797_672
    assert table.set_index("stage").loc["stem", "params"] == 64 * 3 * 49 + 2 * 64
    assert table.set_index("stage").loc["head", "params"] == 512 * 1000 + 1000
    layer4 = sum(p.numel() for p in model.layer4.parameters())
    assert table.set_index("stage").loc["layer4", "params"] == layer4
    assert table["percent"].sum() == pytest.approx(100.0)


# --- multiply-adds --------------------------------------------------------------------------


def test_count_flops_reports_multiply_adds() -> None:
    # One 3x3 conv 3 -> 8 channels on 8x8 (padding 1): 8 * 8 outputs per channel, 8 channels,
    # 3 * 9 multiply-adds each; then a linear layer 8 -> 2.
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    )
    expected = 8 * 8 * 8 * 3 * 9 + 8 * 2
    assert inspection.count_flops(net, (1, 3, 8, 8)) == expected
    assert inspection.count_flops(net, (4, 3, 8, 8)) == 4 * expected  # the whole batch


@pytest.mark.parametrize(
    ("name", "giga_macs"),
    [("resnet18", 1.82), ("resnet34", 3.66), ("resnet50", 4.09), ("resnet101", 7.80)],
)
def test_count_flops_imagenet_resnets(name: str, giga_macs: float) -> None:
    # torchvision's model cards: 1.81 / 3.66 / 4.09 / 7.80 GFLOPS (really multiply-adds).
    macs = inspection.count_flops(build_meta(name), (1, 3, 224, 224))
    assert macs / 1e9 == pytest.approx(giga_macs, rel=0.01)


def test_count_flops_keeps_model_state() -> None:
    model = models.resnet20().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    macs = inspection.count_flops(model, (1, 3, 32, 32))
    assert 40e6 < macs < 42e6  # He et al.: ResNet-20 is about 41 M multiply-adds
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert next(model.parameters()).device.type == "cpu"


def test_count_flops_bad_input_size() -> None:
    model = build_meta("resnet20")
    with pytest.raises(ValueError, match="input_size must be a tuple of positive ints"):
        inspection.count_flops(model, (1, 3, 0, 32))
    with pytest.raises(ValueError, match="input_size"):
        inspection.count_flops(model, 224)
    with pytest.raises(ValueError, match="too small"):  # the model's own input check
        inspection.count_flops(build_meta("resnet18"), (1, 3, 16, 16))


def test_v1_bottleneck_costs_fewer_macs() -> None:
    v15 = inspection.count_flops(build_meta("resnet50"))
    v1 = inspection.count_flops(build_meta("resnet50", stride_in_1x1=True))
    assert v1 < v15


# --- shape table ------------------------------------------------------------------------------

STAGES = ["input", "stem", "layer1", "layer2", "layer3", "layer4", "pool", "fc"]


def test_shape_table_resnet34() -> None:
    model = build_meta("resnet34")
    table = inspection.shape_table(model, (1, 3, 224, 224))
    assert list(table["stage"]) == STAGES
    shapes = dict(zip(table["stage"], table["output_shape"], strict=True))
    assert shapes["input"] == (1, 3, 224, 224)
    assert shapes["stem"] == (1, 64, 56, 56)
    assert shapes["layer2"] == (1, 128, 28, 28)
    assert shapes["layer4"] == (1, 512, 7, 7)
    assert shapes["pool"] == (1, 512, 1, 1)
    assert shapes["fc"] == (1, 1000)
    by_stage = table.set_index("stage")
    assert by_stage.loc["layer4", "downsampling"] == 32
    assert by_stage.loc["stem", "modules"] == "conv1, bn1, act1, maxpool"
    assert table["params"].sum() == 21_797_672
    assert table["macs"].sum() == inspection.count_flops(model, (1, 3, 224, 224))


def test_shape_table_cifar_and_torchvision() -> None:
    import torchvision

    table = inspection.shape_table(build_meta("resnet56"), (2, 3, 32, 32))
    expected = [(2, 16, 32, 32), (2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert list(table["output_shape"])[1:5] == expected
    with torch.device("meta"):
        reference = torchvision.models.resnet18()
    tv = inspection.shape_table(reference, (1, 3, 64, 64))
    assert list(tv["stage"]) == STAGES
    assert tv.set_index("stage").loc["stem", "modules"] == "conv1, bn1, relu, maxpool"


# --- gradient norms ----------------------------------------------------------------------------


def test_gradient_norms_resnet20() -> None:
    torch.manual_seed(0)
    model = models.resnet20().train()
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    table = inspection.gradient_norms(model, x, y)
    assert len(table) == 20 and list(table["depth"]) == list(range(1, 21))
    assert table.iloc[0]["layer"] == "conv1" and table.iloc[-1]["kind"] == "linear"
    assert not table["shortcut"].any()
    assert (table["grad_norm"] > 0).all() and table["grad_norm"].notna().all()
    # Nothing about the model changed: no .grad fields, same BN statistics, same mode.
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(buffers[k], v) for k, v in model.named_buffers())
    assert model.training


def test_gradient_norms_match_autograd_backward() -> None:
    torch.manual_seed(1)
    model = models.resnet20(width=0.25).train()
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    table = inspection.gradient_norms(model, x, y)
    nn.functional.cross_entropy(model(x), y).backward()
    assert table.iloc[0]["grad_norm"] == pytest.approx(model.conv1.weight.grad.norm().item())
    assert table.iloc[-1]["grad_norm"] == pytest.approx(model.fc.weight.grad.norm().item())


def test_gradient_norms_marks_projection_shortcuts() -> None:
    model = models.resnet18(num_classes=4).train()
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    table = inspection.gradient_norms(model, x, y, loss_fn=nn.CrossEntropyLoss())
    assert table["shortcut"].sum() == 3
    assert table["depth"].max() == 18  # projections do not count towards "ResNet-18"
    assert table.set_index("layer").loc["layer2.0.downsample.0", "depth"] == 7


def test_gradient_norms_bad_input() -> None:
    model = models.resnet20()
    with pytest.raises(ValueError, match="y must be"):
        inspection.gradient_norms(model, torch.randn(4, 3, 8, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="must be tensors"):
        inspection.gradient_norms(model, torch.randn(4, 3, 8, 8), [0, 1, 2, 3])
    with pytest.raises(ValueError, match="scalar"):
        inspection.gradient_norms(
            model,
            torch.randn(2, 3, 8, 8),
            torch.tensor([0, 1]),
            loss_fn=nn.CrossEntropyLoss(reduction="none"),
        )
