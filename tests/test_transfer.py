"""helpers.transfer: checked loading, freezing, parameter groups, the offline source model."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import torch
import torchvision
from torch import nn

from helpers import models, transfer
from helpers.data import load_image_folder, make_shapes
from helpers.transfer import WeightsMismatchError, WeightsUnavailableError


def same_tensors(a: dict, b: dict, keys) -> bool:
    return all(torch.equal(a[k], b[k]) for k in keys)


@pytest.fixture(scope="module")
def tv18_file(tmp_path_factory):
    """torchvision's resnet18 (random weights, random BN statistics) saved as a state dict."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(net.state_dict(), path)
    return path, net.eval()


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache, downloads off."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


# --------------------------------------------------------------------------- loading


def test_load_from_a_state_dict_file_gives_torchvision_outputs(tv18_file):
    path, reference = tv18_file
    model = transfer.load_pretrained("resnet18", path, verbose=False).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)
    assert not model.load_report.new_head and model.load_report.new_modules == []


def test_new_class_count_gives_a_new_reported_head(tv18_file, capsys):
    path, reference = tv18_file
    model = transfer.load_pretrained("resnet18", path, num_classes=7)
    report = model.load_report
    assert model.fc.out_features == 7 and report.new_head and report.new_modules == ["fc"]
    assert "num_classes=7, the weights have 1000 classes" in capsys.readouterr().out
    backbone = [k for k in reference.state_dict() if not k.startswith("fc.")]
    assert same_tensors(model.state_dict(), reference.state_dict(), backbone)


def test_same_class_count_loads_the_head_too(tv18_file):
    path, reference = tv18_file
    model = transfer.load_pretrained("resnet18", path, num_classes=1000, verbose=False)
    assert not model.load_report.new_head
    assert torch.equal(model.fc.weight, reference.fc.weight)


def test_stem_mismatch_is_an_error_with_shapes(tv18_file):
    path, _ = tv18_file
    with pytest.raises(WeightsMismatchError) as err:
        transfer.load_pretrained("resnet18", path, num_classes=10, stem="cifar", verbose=False)
    message = str(err.value)
    assert "mismatched shapes (1)" in message
    assert "conv1.weight: model (64, 3, 3, 3), weights (64, 3, 7, 7)" in message
    assert "Nothing was loaded" in message


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = models.resnet18(width=0.25).state_dict()
    del state["layer1.0.bn1.running_mean"]
    state["layer5.0.conv1.weight"] = torch.zeros(3, 3)
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(WeightsMismatchError) as err:
        transfer.load_pretrained("resnet18", path, verbose=False, width=0.25)
    message = str(err.value)
    assert "missing (in the model, not in the weights) (1):" in message
    assert "layer1.0.bn1.running_mean (16)" in message
    assert "unexpected (in the weights, not in the model) (1):" in message
    assert "layer5.0.conv1.weight (3, 3)" in message


def test_a_head_mismatch_is_refused_unless_asked_for():
    model = models.resnet18(width=0.25, num_classes=10)
    weights = models.resnet18(width=0.25, num_classes=5).state_dict()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsMismatchError, match=r"fc.weight: model \(10, 128\), weights"):
        transfer.load_weights(model, weights)
    assert same_tensors(model.state_dict(), before, before)  # nothing was copied
    report = transfer.load_weights(model, weights, new_head=True, reason="test")
    assert report.new_modules == ["fc"] and torch.equal(model.fc.weight, before["fc.weight"])


def test_a_bigger_network_is_not_loaded_in_part():
    with pytest.raises(WeightsMismatchError, match="unexpected"):
        transfer.load_weights(
            models.resnet18(width=0.25), models.resnet34(width=0.25).state_dict(), new_head=True
        )


def test_offline_without_cache_says_what_to_download_and_where(hub):
    with pytest.raises(WeightsUnavailableError) as err:
        transfer.load_pretrained("resnet18", "IMAGENET1K_V1", verbose=False)
    message = str(err.value)
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert str(hub / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "COURSE_OFFLINE=1" in message


def test_cached_torchvision_weights_load_offline_through_the_weights_api(hub, tv18_file):
    path, reference = tv18_file
    (hub / "checkpoints").mkdir(parents=True)
    cached = hub / "checkpoints" / "resnet18-f37072fd.pth"
    cached.write_bytes(path.read_bytes())
    model = transfer.load_pretrained("resnet18", num_classes=10, verbose=False)  # DEFAULT = V1
    assert torch.equal(model.conv1.weight, reference.conv1.weight)
    assert "ResNet18_Weights.IMAGENET1K_V1" in model.load_report.source


def test_bad_names_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown weights 'IMAGENET1K_V2' for resnet18.*V1"):
        transfer.load_pretrained("resnet18", "IMAGENET1K_V2")
    with pytest.raises(ValueError, match="no pretrained weights for 'resnet20'"):
        transfer.load_pretrained("resnet20")
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        transfer.load_pretrained("resnet18", "no/such/file.pt")


def test_pretrained_meta_needs_no_download(hub):
    meta = transfer.pretrained_meta("resnet50", "IMAGENET1K_V2")
    assert len(meta["categories"]) == 1000 and meta["categories"][0] == "tench"
    assert meta["transforms"].crop_size == [224] and meta["acc@1"] == pytest.approx(80.858)
    assert meta["weights"] == "ResNet50_Weights.IMAGENET1K_V2"


# --------------------------------------------------------------------------- attention


@pytest.fixture(scope="module")
def small_source(tmp_path_factory):
    torch.manual_seed(1)
    net = models.resnet18(width=0.25, num_classes=5)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    path = tmp_path_factory.mktemp("small") / "small.pt"
    torch.save(net.state_dict(), path)
    return path, net.eval()


@pytest.mark.parametrize("attention", ["se", "cbam"])
def test_attention_modules_are_reported_and_identity_init_is_exact(small_source, attention):
    path, reference = small_source
    model = transfer.load_pretrained(
        "resnet18", path, verbose=False, width=0.25, attention=attention
    ).eval()
    report = model.load_report
    assert report.new_modules[:2] == ["layer1.0.se", "layer1.1.se"] and len(report.new_modules) == 8
    assert not report.new_head
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = reference(x)
        assert not torch.allclose(model(x), expected, atol=1e-2)  # random gates change it
        names = transfer.identity_init_attention(model)
        assert names == report.new_modules
        assert torch.allclose(model(x), expected, atol=1e-5, rtol=1e-4)


def test_identity_init_keeps_the_attention_trainable(small_source):
    path, _ = small_source
    model = transfer.load_pretrained("resnet18", path, verbose=False, width=0.25, attention="se")
    transfer.identity_init_attention(model)
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    grad = model.layer1[0].se.fc2.weight.grad
    assert grad is not None and grad.abs().sum() > 0  # gates at 0.5: the sigmoid's steepest point


def test_identity_init_needs_attention():
    with pytest.raises(ValueError, match="no attention modules"):
        transfer.identity_init_attention(models.resnet18(width=0.25))


@pytest.fixture(scope="module")
def tv50_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights50") / "resnet50.pt"
    torch.manual_seed(0)
    state = torchvision.models.resnet50().state_dict()
    torch.save(state, path)
    return path, state


def test_cbam_resnet50_loads_the_torchvision_backbone_only(tv50_file):
    path, state = tv50_file
    model = transfer.load_pretrained("cbam_resnet50", path, num_classes=10, verbose=False)
    report = model.load_report
    assert len(report.new_modules) == 16 + 1 and report.new_modules[-1] == "fc"
    assert report.new_modules[0] == "layer1.0.se" and "layer4.2.se" in report.new_modules
    backbone = [k for k in state if not k.startswith("fc.")]
    assert same_tensors(model.state_dict(), state, backbone)
    assert {k for k in model.state_dict() if k not in state} == {
        k for k in model.state_dict() if ".se." in k
    }
    assert model.fc.weight.shape == (10, 2048)


def test_ta_resnet50_gets_a_new_head_of_its_own_design(tv50_file):
    path, _ = tv50_file
    model = transfer.load_pretrained("ta_resnet50", path, verbose=False)  # num_classes=None
    assert model.load_report.new_head
    assert "another design" in model.load_report.reason
    assert isinstance(model.fc, nn.Sequential) and model.fc[-1].out_features == 1000


# --------------------------------------------------------------------------- fine-tuning


def test_replace_head():
    model = transfer.replace_head(models.resnet18(width=0.25), 7)
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 7
    model = transfer.replace_head(model, 3, hidden=32, dropout=0.5)
    assert isinstance(model.fc, nn.Sequential) and model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    with pytest.raises(TypeError, match="reset_classifier"):
        transfer.replace_head(nn.Linear(2, 2), 3)


def test_freeze_until_a_stage_and_unfreeze():
    model = models.resnet18(width=0.25)
    transfer.freeze(model, until="layer3")
    table = transfer.summary(model, show=False)
    assert list(table["status"][:6]) == ["frozen"] * 4 + ["trainable"] * 2
    assert (
        table.loc["total", "trainable"]
        == table.loc["layer4", "parameters"] + table.loc["head", "parameters"]
    )
    assert not model.conv1.weight.requires_grad and model.layer4[0].conv1.weight.requires_grad
    transfer.unfreeze(model)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match=r"until must be one of \['stem', 'layer1'"):
        transfer.freeze(model, until="layer5")


def test_frozen_bn_statistics_survive_model_train():
    model = models.resnet20(width=0.5)
    transfer.freeze(model, until="layer2", bn_stats=True)
    model.train()  # what fit() does every epoch
    frozen_bn, live_bn = model.layer1[0].bn1, model.layer3[0].bn1
    before = frozen_bn.running_mean.clone(), live_bn.running_mean.clone()
    model(torch.randn(8, 3, 16, 16) * 3 + 1)
    assert torch.equal(frozen_bn.running_mean, before[0])
    assert not torch.equal(live_bn.running_mean, before[1])
    assert "layer1.0.bn1" in transfer.frozen_bn_modules(model)
    assert transfer.summary(model, show=False).loc["layer1", "BN stats"] == "frozen"
    transfer.unfreeze(model)
    model.train()
    model(torch.randn(8, 3, 16, 16) * 3 + 1)
    assert not torch.equal(frozen_bn.running_mean, before[0])
    assert transfer.frozen_bn_modules(model) == []


def test_param_groups_give_discriminative_learning_rates():
    model = models.resnet18(width=0.25, attention="se")
    transfer.freeze(model, until="layer1")
    groups = transfer.param_groups(model, lr=0.1, backbone_lr=0.01, new_modules=["layer4.1.se"])
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbone"]["lr"] == 0.01 and by_name["head"]["lr"] == 0.1
    head_ids = {id(p) for p in by_name["head"]["params"]}
    assert id(model.fc.weight) in head_ids and id(model.layer4[1].se.fc1.weight) in head_ids
    all_ids = head_ids | {id(p) for p in by_name["backbone"]["params"]}
    assert id(model.conv1.weight) not in all_ids  # frozen: left out
    assert len(all_ids) == sum(p.requires_grad for p in model.parameters())
    assert transfer.param_groups(model, 0.1)[0]["lr"] == pytest.approx(0.01)  # default lr / 10
    with pytest.raises(ValueError, match="names no module"):
        transfer.param_groups(model, 0.1, new_modules=["layer9"])
    torch.optim.SGD(groups, momentum=0.9)  # a valid optimizer


def test_summary_prints_a_row_per_part(capsys):
    table = transfer.summary(models.resnet20())
    out = capsys.readouterr().out
    assert list(table.index) == ["stem", "layer1", "layer2", "layer3", "head", "total"]
    assert table.loc["total", "parameters"] == sum(
        p.numel() for p in models.resnet20().parameters()
    )
    assert re.search(r"total\s+269,\d{3}", out)


# --------------------------------------------------------------------------- source model


@pytest.fixture(scope="module")
def tiny_task():
    from helpers.data import DataSplits

    images = make_shapes(96, image_size=16, seed=0, classes=("circle", "square", "cross"))
    test = make_shapes(48, image_size=16, seed=1, classes=("circle", "square", "cross"))
    return DataSplits(
        train=images, val=None, test=test, classes=["circle", "square", "cross"], num_classes=3,
        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), image_size=16, source="tiny shapes",
    )  # fmt: skip


def test_source_model_is_saved_with_metadata_and_reused(tiny_task, tmp_path, monkeypatch):
    kwargs = dict(arch="resnet20", model_kwargs={"width": 0.25}, epochs=1, cache_dir=tmp_path)
    path, _ = transfer.source_model(tiny_task, verbose=False, **kwargs)
    assert path.parent == tmp_path and [p.name for p in tmp_path.iterdir()] == [path.name]
    state, saved = transfer.read_weights_file(path)  # weights_only=True inside
    assert saved["categories"] == ["circle", "square", "cross"] and 0 <= saved["source_acc"] <= 1
    assert saved["mean"] == [0.5, 0.5, 0.5] and saved["model_kwargs"] == {"width": 0.25}

    import helpers.train

    def no_training(*args, **kw):
        raise AssertionError("the cached model should have been reused")

    monkeypatch.setattr(helpers.train, "fit", no_training)
    again, meta2 = transfer.source_model(tiny_task, verbose=False, **kwargs)
    assert again == path and meta2 == saved

    model = transfer.load_pretrained("resnet20", path, 3, verbose=False, width=0.25)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
    meta3 = transfer.pretrained_meta("resnet20", path)
    assert meta3["transforms"](torch.zeros(3, 20, 20, dtype=torch.uint8)).shape == (3, 16, 16)


def test_a_corrupt_cache_file_is_trained_again(tiny_task, tmp_path, capsys):
    kwargs = dict(arch="resnet20", model_kwargs={"width": 0.25}, epochs=1, cache_dir=tmp_path)
    path, _ = transfer.source_model(tiny_task, verbose=False, **kwargs)
    path.write_bytes(b"not a checkpoint")
    again, _ = transfer.source_model(tiny_task, verbose=False, **kwargs)
    assert "unreadable" in capsys.readouterr().out and transfer.read_weights_file(again)


# --------------------------------------------------------------------------- data


def test_class_subset_and_per_class(tiny_task):
    sub = transfer.class_subset(tiny_task, ["square", "cross"])
    assert sub.classes == ["square", "cross"] and sub.num_classes == 2
    assert set(sub.train.labels.tolist()) == {0, 1}
    expected = (tiny_task.train.labels == 1).sum() + (tiny_task.train.labels == 2).sum()
    assert len(sub.train) == expected
    few = transfer.per_class(sub.train, 3, seed=0)
    assert torch.bincount(few.labels).tolist() == [3, 3]
    assert transfer.per_class(sub.train, None) is sub.train
    with pytest.raises(ValueError, match="fewer than n=1000"):
        transfer.per_class(sub.train, 1000)
    with pytest.raises(ValueError, match="distinct names"):
        transfer.class_subset(tiny_task, ["square", "hexagon"])


def test_write_image_folder_round_trips(tiny_task, tmp_path):
    root = transfer.write_image_folder(
        tmp_path / "imgs", tiny_task.train, tiny_task.classes, per_class=4
    )
    splits = load_image_folder(root, image_size=16, val_size=0, test_size=0)
    assert splits.classes == sorted(tiny_task.classes) and len(splits.train) == 12


def test_resized_loader():
    batches = [(torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))]
    ((x, _),) = list(transfer.Resized(batches, 32))
    assert x.shape == (2, 3, 32, 32) and len(transfer.Resized(batches, 32)) == 1


# --------------------------------------------------------------------------- corruptions


def test_corruptions():
    images = make_shapes(16, image_size=16, seed=0).images
    assert torch.equal(transfer.corrupt(images, "gaussian_noise", 0), images)
    noisy = [transfer.corrupt(images, "gaussian_noise", s, seed=1) for s in (1, 5)]
    errors = [(n.float() - images.float()).std().item() for n in noisy]
    assert 0 < errors[0] < errors[1] and errors[1] == pytest.approx(0.10 * 255, rel=0.3)
    assert torch.equal(noisy[0], transfer.corrupt(images, "gaussian_noise", 1, seed=1))
    flat = transfer.corrupt(images, "contrast", 5)
    assert flat.float().std(dim=(2, 3)).mean() < 0.2 * images.float().std(dim=(2, 3)).mean()
    blurred = transfer.corrupt(images, "gaussian_blur", 5).float()
    assert blurred.diff(dim=-1).abs().mean() < images.float().diff(dim=-1).abs().mean()
    with pytest.raises(ValueError, match="unknown corruption"):
        transfer.corrupt(images, "fog", 1)
    with pytest.raises(ValueError, match="severity"):
        transfer.corrupt(images, "contrast", 6)


def test_robustness_table():
    test = make_shapes(32, image_size=16, seed=2)
    nets = {"a": models.resnet20(width=0.25, num_classes=6).eval()}
    table = transfer.robustness(nets, test, (0.5,) * 3, (0.25,) * 3, severities=(1, 5))
    assert isinstance(table, pd.DataFrame)
    assert set(table["corruption"]) == set(transfer.CORRUPTIONS)
    assert len(table) == 3 * 3  # clean + 2 severities, per corruption
    assert table["acc"].between(0, 1).all()


def test_adapt_stem_keeps_the_weights_and_the_resolution():
    model = models.resnet18(width=0.25)
    weight = model.conv1.weight.clone()
    transfer.adapt_stem(model)
    assert torch.equal(model.conv1.weight, weight) and model.conv1.stride == (1, 1)
    assert model.eval().forward_features(torch.randn(1, 3, 8, 8)).shape[-1] == 1  # 8x8 fits now
    with pytest.raises(TypeError, match="ImageNet stem"):
        transfer.adapt_stem(models.resnet20())


def test_repeat_to(tiny_task):
    few = transfer.per_class(tiny_task.train, 2, seed=0)
    tiled = transfer.repeat_to(few, 15)
    assert len(tiled) == 18 and torch.equal(tiled.images[6:12], few.images)
    assert transfer.repeat_to(few, 3) is few


def test_weight_change_per_part():
    model = models.resnet20(width=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.layer3[0].conv1.weight.mul_(2)
    change = transfer.weight_change(model, before)
    assert change["stem"] == 0 and change["layer1"] == 0 and change["layer3"] > 0.1


def test_new_head_can_be_asked_for_with_the_same_class_count(tv18_file):
    path, reference = tv18_file
    torch.manual_seed(123)  # not the fixture's seed: its init would equal the saved fc
    model = transfer.load_pretrained("resnet18", path, 1000, new_head=True, verbose=False)
    assert model.load_report.new_head and "new_head=True" in model.load_report.reason
    assert not torch.equal(model.fc.weight, reference.fc.weight)


def test_robustness_rows_are_sorted_by_severity():
    test = make_shapes(16, image_size=16, seed=2)
    nets = {"a": models.resnet20(width=0.25, num_classes=6).eval()}
    table = transfer.robustness(nets, test, (0.5,) * 3, (0.25,) * 3, severities=(1, 3))
    for _, df in table.groupby("corruption"):
        assert list(df["severity"]) == [0, 1, 3]
