"""The notebook 00 self-checks pass on right answers and fail on wrong ones."""

from __future__ import annotations

import os

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from helpers import settings
from helpers.check import FAIL, PASS, TODO, nb00
from helpers.models import resnet20


def test_stem_parameters() -> None:
    assert nb00.stem_parameters(3 * 3 * 3 * 16 + 2 * 16).status == PASS
    assert nb00.stem_parameters(3 * 3 * 3 * 16).status == FAIL  # forgot BN
    assert nb00.stem_parameters(...).status == TODO


def test_normalize() -> None:
    def right(images, mean, std):
        return TF.normalize(images.float() / 255, list(mean), list(std))

    def unscaled(images, mean, std):
        return TF.normalize(images.float(), list(mean), list(std))

    assert nb00.normalize(right).status == PASS
    assert nb00.normalize(unscaled).status == FAIL


def test_invalid_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_QUICK", "2")
    try:
        settings.quick_mode()
    except ValueError as err:
        raised = err
    assert nb00.invalid_mode(raised).status == PASS
    assert nb00.invalid_mode(KeyError("COURSE_QUICK")).status == FAIL
    assert nb00.invalid_mode(ValueError("something else")).status == FAIL
    assert nb00.invalid_mode(False).status == FAIL  # no exception passed
    assert nb00.invalid_mode(...).status == TODO
    assert os.environ["COURSE_QUICK"] == "2"  # the check leaves the environment alone


@pytest.fixture(scope="module")
def confused_model():
    # An untrained net on a fixed batch: its confusion matrix has a clear largest cell.
    torch.manual_seed(0)
    model = resnet20(num_classes=10).eval()
    g = torch.Generator().manual_seed(1)
    loader = [(torch.randn(32, 3, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g))]
    return model, loader


def test_most_confused(confused_model) -> None:
    from helpers.train import confusion_matrix

    model, loader = confused_model
    matrix = confusion_matrix(model, loader, 10).clone()
    matrix.fill_diagonal_(0)
    true, predicted = divmod(int(matrix.argmax()), 10)
    smallest = divmod(int(matrix.argmin()), 10)
    assert nb00.most_confused((true, predicted), model=model, loader=loader).status == PASS
    wrong = nb00.most_confused(smallest, model=model, loader=loader)
    assert wrong.status == FAIL
    assert nb00.most_confused((3, 3), model=model, loader=loader).status == FAIL
    assert nb00.most_confused("3 and 8", model=model, loader=loader).status == FAIL


def test_invalid_course_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    monkeypatch.setenv("COURSE_MODE", "fast")
    with pytest.raises(ValueError) as info:
        settings.mode()
    result = nb00.invalid_mode(info.value)
    assert result.status == PASS and "COURSE_MODE" in result.message
    assert nb00.invalid_mode(KeyError("COURSE_MODE")).status == FAIL
