"""helpers.cam: the package's maps, made safe (target layer, no_grad, state, hooks, in-place)."""

from __future__ import annotations

import copy
import gc
import tracemalloc

import numpy as np
import pytest

# grad-cam is a course dependency, but the bare GPU machine lacks it: skip, do not abort collection.
pytest.importorskip("pytorch_grad_cam")
import torch
import torchvision
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from helpers import cam, models


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return models.resnet18(stem="cifar", width=0.125, num_classes=5).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def hook_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def scratch_grad_cam(model: nn.Module, x: torch.Tensor, classes: list[int], layer: nn.Module):
    """Grad-CAM from its definition (Selvaraju et al. 2017), as notebook 07 writes it."""
    saved = {}
    handle = layer.register_forward_hook(lambda m, i, o: saved.update(a=o))
    try:
        logits = model(x)
        score = logits[torch.arange(len(x)), torch.tensor(classes)].sum()
        grads = torch.autograd.grad(score, saved["a"])[0]
    finally:
        handle.remove()
    weights = grads.mean(dim=(2, 3), keepdim=True)  # alpha_k: pooled gradients
    maps = torch.relu((weights * saved["a"]).sum(dim=1, keepdim=True))
    maps = nn.functional.interpolate(maps, size=x.shape[-2:], mode="bilinear")[:, 0]
    lo = maps.amin(dim=(1, 2), keepdim=True)
    maps = maps - lo
    return (maps / (maps.amax(dim=(1, 2), keepdim=True) + 1e-7)).detach().numpy()


# ----------------------------------------------------------------------- the maps


def test_grad_cam_equals_from_scratch(model: nn.Module, images: torch.Tensor) -> None:
    classes = [0, 3, 4]
    got = cam.grad_cam(model, images, classes)
    want = scratch_grad_cam(model, images, classes, model.layer4[-1])
    assert got.shape == (3, 32, 32) and got.dtype == np.float32
    # The package resizes with OpenCV (cv2.resize, bilinear), this with torch's interpolate:
    # both sample at pixel centres, so only float rounding differs (measured ~3e-6).
    assert np.abs(got - want).max() < 1e-4
    assert got.min() >= 0 and got.max() <= 1 + 1e-6


def test_grad_cam_equals_the_package_on_a_copy(model: nn.Module, images: torch.Tensor) -> None:
    reference = copy.deepcopy(model)
    targets = [ClassifierOutputTarget(c) for c in (1, 2, 1)]
    with GradCAM(reference, [reference.layer3[-1]]) as package:
        want = package(images, targets)
    got = cam.grad_cam(model, images, [1, 2, 1], model.layer3[-1])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_default_targets_are_the_predictions(model: nn.Module, images: torch.Tensor) -> None:
    predicted = model(images).argmax(1).tolist()
    np.testing.assert_array_equal(
        cam.grad_cam(model, images), cam.grad_cam(model, images, predicted)
    )


def test_inplace_relu_after_the_target_layer(model: nn.Module, images: torch.Tensor) -> None:
    # block.bn1 is followed by ReLU(inplace=True): the package alone keeps the rectified
    # tensor as the "activation"; helpers.cam switches in-place off for the call.
    reference = copy.deepcopy(model)
    for m in reference.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    layer = model.layer4[-1].bn1
    targets = [ClassifierOutputTarget(c) for c in (0, 1, 2)]
    with GradCAM(reference, [reference.layer4[-1].bn1]) as package:
        want = package(images, targets)
    as_built = copy.deepcopy(model)
    with GradCAM(as_built, [as_built.layer4[-1].bn1]) as package:
        wrong = package(images, targets)
    assert np.abs(wrong - want).max() > 0.05  # the trap is real
    got = cam.grad_cam(model, images, [0, 1, 2], layer)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


@pytest.mark.parametrize("method", list(cam.METHODS))
def test_every_method_runs(model: nn.Module, images: torch.Tensor, method: str) -> None:
    maps = cam.grad_cam(model, images[:1], [2], method=method, batch_size=64)
    assert maps.shape == (1, 32, 32) and np.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1 + 1e-6
    assert hook_count(model) == 0


def test_bad_arguments_are_named(model: nn.Module, images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="known methods: gradcam, hirescam"):
        cam.grad_cam(model, images, method="gradcam2")
    with pytest.raises(ValueError, match="out of range for 5 classes"):
        cam.grad_cam(model, images, [0, 1, 5])
    with pytest.raises(ValueError, match="one per image"):
        cam.grad_cam(model, images, [0, 1])
    with pytest.raises(ValueError, match="not a module of this model"):
        cam.grad_cam(model, images, target_layer=nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="unsqueeze"):
        cam.grad_cam(model, images[0])
    with pytest.raises(TypeError, match="float"):
        cam.grad_cam(model, (images * 100).to(torch.uint8))


# ----------------------------------------------------------------------- the target layer


@pytest.mark.parametrize(
    ("builder", "kwargs"),
    [
        (models.resnet18, {"stem": "cifar", "width": 0.125}),
        (models.resnet20, {}),
        (models.resnet20, {"attention": "se"}),
        (models.resnet18, {"stem": "cifar", "width": 0.125, "attention": "cbam"}),
        (models.plain20, {}),
        (models.resnet18, {"stem": "cifar", "width": 0.125, "head_hidden": 16}),
    ],
)
def test_default_target_layer_for_helpers_models(builder, kwargs) -> None:
    net = builder(num_classes=3, **kwargs)
    last = getattr(net, net.stage_names[-1])[-1]
    assert cam.default_target_layer(net) is last
    # The layer the map comes from is the one forward_features ends with.
    seen = {}
    handle = last.register_forward_hook(lambda m, i, o: seen.update(out=o))
    features = net.eval().forward_features(torch.randn(1, 3, 32, 32))
    handle.remove()
    assert torch.equal(seen["out"], features)


@pytest.fixture(scope="module")
def ta_resnet50() -> nn.Module:
    with torch.device("meta"):  # structure only: no weights to initialise
        return models.ta_resnet50(num_classes=4)


def test_default_target_layer_for_ta_resnet50(ta_resnet50: nn.Module) -> None:
    # Its head is an nn.Sequential of Linear layers: never mistaken for a stage.
    assert isinstance(ta_resnet50.fc, nn.Sequential)
    assert cam.default_target_layer(ta_resnet50) is ta_resnet50.layer4[-1]
    plain = copy.copy(ta_resnet50)
    object.__setattr__(plain, "stage_names", ())  # force the structural fallback
    assert cam.default_target_layer(plain) is ta_resnet50.layer4[-1]


def test_default_target_layer_for_torchvision() -> None:
    with torch.device("meta"):
        net = torchvision.models.resnet50()
    assert cam.default_target_layer(net) is net.layer4[-1]
    with pytest.raises(ValueError, match="pass target_layer="):
        cam.default_target_layer(nn.Sequential(nn.Flatten(), nn.Linear(3, 2)))


# ----------------------------------------------------------------------- the model's state


def test_no_grad_and_state_restored(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    net = models.resnet20(num_classes=4).train()
    net.layer1.requires_grad_(False)  # a caller's frozen stage
    net.layer3[0].bn1.eval()  # and a BN frozen inside a training model
    net(images).sum().backward()  # a caller's accumulated gradients
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    flags = {n: p.requires_grad for n, p in net.named_parameters()}
    modes = {n: m.training for n, m in net.named_modules()}
    buffers = {n: b.clone() for n, b in net.named_buffers()}

    with torch.no_grad():
        maps = cam.grad_cam(net, images, [0, 1, 2])
    assert maps.max() > 0  # real gradients flowed, though the caller turned them off

    assert {n: p.requires_grad for n, p in net.named_parameters()} == flags
    assert {n: m.training for n, m in net.named_modules()} == modes
    assert grads.keys() == {n for n, p in net.named_parameters() if p.grad is not None}
    for n, p in net.named_parameters():
        if n in grads:
            assert torch.equal(p.grad, grads[n]), n
    for n, b in net.named_buffers():  # eval mode inside: BN statistics untouched
        assert torch.equal(b, buffers[n]), n
    assert hook_count(net) == 0


def test_state_restored_after_an_error(model: nn.Module, images: torch.Tensor) -> None:
    model.train()
    try:
        with pytest.raises(RuntimeError, match="boom"), cam.cam_session(model):
            raise RuntimeError("boom")
        assert model.training and hook_count(model) == 0
        assert all(p.requires_grad for p in model.parameters())
    finally:
        model.eval()


def test_hundred_calls_leak_no_hooks_and_no_memory(model: nn.Module, images: torch.Tensor) -> None:
    for _ in range(5):  # warm-up: caches, lazy imports
        cam.grad_cam(model, images[:2])
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(100):
        cam.grad_cam(model, images[:2])
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert hook_count(model) == 0
    # One call's maps and activations are ~30 KB; a leak of one per call would be > 3 MB.
    assert grown < 1_000_000, f"memory grew by {grown:,} bytes over 100 calls"


# ----------------------------------------------------------------------- localisation


def test_pointing_game_on_known_boxes() -> None:
    maps = np.zeros((4, 20, 20))
    maps[0, 5, 6] = 1  # inside the box
    maps[1, 5, 12] = 1  # 2 pixels right of x_max = 10
    maps[2, 15, 15] = 1  # far away
    # image 3: a flat map points nowhere
    boxes = [[4, 3, 10, 8]] * 4
    np.testing.assert_array_equal(
        cam.pointing_game(maps, boxes, tolerance=0), [True, False, False, False]
    )
    np.testing.assert_array_equal(
        cam.pointing_game(maps, boxes, tolerance=2), [True, False, False, False]
    )  # TorchRay's rule is strictly closer than the tolerance
    np.testing.assert_array_equal(
        cam.pointing_game(torch.tensor(maps), torch.tensor(boxes), tolerance=3),
        [True, True, False, False],
    )
    assert cam.scaled_tolerance(224) == 15 and cam.scaled_tolerance(32) == 2


def test_pointing_game_uses_x_as_column() -> None:
    maps = np.zeros((1, 10, 30))
    maps[0, 2, 25] = 1  # row 2, column 25
    assert cam.pointing_game(maps, [[20, 0, 29, 4]], tolerance=0)[0]
    assert not cam.pointing_game(maps, [[0, 20, 4, 29]], tolerance=0)[0]


def test_energy_in_box_on_known_boxes() -> None:
    maps = np.zeros((3, 10, 10))
    maps[0, 2:4, 2:4] = 1  # all inside
    maps[1] = 1  # uniform: the box's area share, 4 x 5 / 100
    maps[1, 0, 0] = 1
    boxes = [[2, 2, 3, 3], [0, 0, 3, 4], [0, 0, 1, 1]]
    energy = cam.energy_in_box(maps.tolist(), boxes)
    np.testing.assert_allclose(energy[:2], [1.0, 0.2])
    assert np.isnan(energy[2])  # an empty map has no energy to share
    np.testing.assert_allclose(cam.box_area_share(boxes, (10, 10)), [0.04, 0.2, 0.04])


def test_localisation_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"boxes must be \(B, 4\)"):
        cam.energy_in_box(np.ones((2, 5, 5)), [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="x_min <= x_max"):
        cam.pointing_game(np.ones((1, 5, 5)), [[3, 0, 1, 1]])
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        cam.pointing_game(np.ones((5, 5)), [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="tolerance"):
        cam.pointing_game(np.ones((1, 5, 5)), [[0, 0, 1, 1]], tolerance=-1)


# ----------------------------------------------------------------------- overlay, metrics


def test_overlay_denormalises(images: torch.Tensor) -> None:
    maps = np.zeros((3, 32, 32), dtype=np.float32)
    uint8 = (torch.rand(3, 3, 32, 32) * 255).to(torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    normalised = (uint8.float() / 255 - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[
        :, None, None
    ]
    a = cam.overlay(uint8, maps)
    b = cam.overlay(normalised, maps, mean=mean, std=std)
    assert a.shape == (3, 32, 32, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="mean= and std="):
        cam.overlay(normalised, maps)


def test_faithfulness_runs_the_package_metrics(model: nn.Module, images: torch.Tensor) -> None:
    maps = cam.grad_cam(model, images)
    table = cam.faithfulness(model, images, maps, percentiles=(50,))
    assert list(table.columns) == ["road_morf", "road_lerf", "road_combined", "confidence_change"]
    assert len(table) == 3 and np.isfinite(table.to_numpy()).all()
    again = cam.faithfulness(model, images, maps, percentiles=(50,))
    np.testing.assert_array_equal(table.to_numpy(), again.to_numpy())  # seeded imputation
    np.testing.assert_allclose(table.road_combined, (table.road_lerf - table.road_morf) / 2)


def test_cascading_randomization(model: nn.Module, images: torch.Tensor) -> None:
    before = copy.deepcopy(model.state_dict())
    table, maps = cam.cascading_randomization(model, images)
    units = [name for name, _ in cam.cascade_units(model)]
    assert units[:3] == ["fc", "layer4.1", "layer4.0"] and units[-1] == "conv1"
    assert list(table.randomised_down_to) == units and list(maps)[1:] == units
    # Randomising the whole network must decorrelate the maps from the trained ones.
    assert table.spearman.iloc[-1] < 0.9
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
