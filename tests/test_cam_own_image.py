"""helpers.cam.own_image: a classifier with its preprocessing, for Grad-CAM on an image file."""

from __future__ import annotations

import numpy as np
import pytest

# grad-cam is a course dependency, but the bare GPU machine lacks it: skip, do not abort collection.
pytest.importorskip("pytorch_grad_cam")
import torch
import torchvision
from PIL import Image
from torch import nn

from helpers import cam, models
from helpers.data import DataSplits, ImageTensorSet, channel_stats


def tiny_splits(channels: int = 3, size: int = 16, classes: int = 3) -> DataSplits:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, channels, size, size), dtype=torch.uint8, generator=g)
    train = ImageTensorSet(images, torch.arange(6) % classes)
    mean, std = channel_stats(images)
    return DataSplits(
        train=train,
        val=None,
        test=train,
        classes=[f"class {k}" for k in range(classes)],
        num_classes=classes,
        mean=mean,
        std=std,
        image_size=size,
        source="random pixels",
        name="tiny",
    )


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return models.resnet18(stem="cifar", width=0.125, num_classes=3).eval()


def test_saved_image_reads_back_normalised_as_the_data(tmp_path, model: nn.Module) -> None:
    data = tiny_splits()
    clf = cam.course_classifier(model, data)
    path = cam.save_image(data.test.images[0], tmp_path / "image.png")
    x = clf.load(path)
    want = (data.test.images[0].float() / 255 - torch.tensor(data.mean)[:, None, None]) / (
        torch.tensor(data.std)[:, None, None]
    )
    assert x.shape == (1, 3, 16, 16) and x.dtype == torch.float32
    torch.testing.assert_close(x[0], want, atol=1e-5, rtol=1e-5)  # PNG is lossless
    assert clf.classes == data.classes and clf.mean == data.mean and clf.std == data.std
    assert clf.description == "the course's tiny model (3 classes, 16x16 inputs)"
    maps = cam.grad_cam(clf.model, x.expand(2, -1, -1, -1), [0, 2])
    assert maps.shape == (2, 16, 16)


def test_a_larger_photo_is_resized_and_centre_cropped(tmp_path, model: nn.Module) -> None:
    data = tiny_splits()
    array = np.zeros((32, 64, 3), dtype=np.uint8)  # 32 rows, 64 columns
    array[:, 16:48] = 255  # a white centre square: what the centre crop keeps
    Image.fromarray(array).save(tmp_path / "wide.png")
    x = cam.course_classifier(model, data).load(tmp_path / "wide.png")
    assert x.shape == (1, 3, 16, 16)
    white = (1 - torch.tensor(data.mean)) / torch.tensor(data.std)
    torch.testing.assert_close(x[0, :, 8, 8], white, atol=1e-4, rtol=1e-4)


def test_grey_data_reads_one_channel(tmp_path) -> None:
    data = tiny_splits(channels=1)
    grey = models.resnet18(stem="cifar", width=0.125, num_classes=3, in_chans=1)
    path = cam.save_image(data.test.images[1], tmp_path / "grey.png")
    x = cam.course_classifier(grey, data).load(path)
    assert x.shape == (1, 1, 16, 16)


def test_imagenet_classifier_uses_the_weights_and_their_transforms(monkeypatch) -> None:
    from torchvision.models import ResNet50_Weights

    reference = torchvision.models.resnet50().state_dict()
    calls = []

    def fake_state_dict(self, *args, **kwargs):  # no download in a test
        calls.append(self)
        return reference

    monkeypatch.setattr(ResNet50_Weights, "get_state_dict", fake_state_dict)
    clf = cam.imagenet_classifier()
    assert calls == [ResNet50_Weights.DEFAULT]
    assert torch.equal(clf.model.fc.weight, reference["fc.weight"])
    assert len(clf.classes) == 1000 and clf.classes[0] == "tench"
    assert clf.mean == (0.485, 0.456, 0.406) and clf.std == (0.229, 0.224, 0.225)
    assert clf.description == f"ImageNet ResNet50 (torchvision weights {calls[0].name})"
    x = clf.preprocess(Image.new("RGB", (300, 250)))
    assert x.shape == (3, 224, 224)


def test_bad_input_is_named(tmp_path, model: nn.Module) -> None:
    data = tiny_splits()
    clf = cam.course_classifier(model, data)
    with pytest.raises(FileNotFoundError, match="no image file"):
        clf.load(tmp_path / "missing.jpg")
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="not an image file"):
        clf.load(tmp_path / "notes.jpg")
    with pytest.raises(ValueError, match="uint8"):
        cam.save_image(torch.rand(3, 8, 8), tmp_path / "float.png")
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        cam.save_image(torch.zeros(8, 8, 3, dtype=torch.uint8), tmp_path / "hwc.png")
    with pytest.raises(ValueError, match="DataSplits"):
        cam.course_classifier(model, {"classes": ["a"]})
    with pytest.raises(ValueError, match="3 outputs but data has 4 classes"):
        cam.course_classifier(model, tiny_splits(classes=4))
    with pytest.raises(TypeError, match=r"nn\.Module"):
        cam.course_classifier("model", data)
