"""helpers.transfer.FineTuneRecipe: the loaders and the run every transfer experiment shares."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from helpers import models, transfer
from helpers.data import DataSplits, make_shapes

CLASSES = ("circle", "square", "cross")


@pytest.fixture(scope="module")
def task() -> DataSplits:
    """Three shape classes at 16x16: 48 training, 24 validation and 24 test images."""
    train, val, test = (
        make_shapes(n, image_size=16, seed=s, classes=CLASSES) for s, n in enumerate((48, 24, 24))
    )
    return DataSplits(
        train=train, val=val, test=test, classes=list(CLASSES), num_classes=3,
        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), image_size=16, source="tiny shapes",
    )  # fmt: skip


def recipe(task: DataSplits, **kw) -> transfer.FineTuneRecipe:
    options = dict(image_size=32, steps=6, epochs=2, batch_size=4) | kw
    return transfer.FineTuneRecipe(task, **options)


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.resnet20(width=0.25, num_classes=3)


def test_a_few_images_make_steps_per_epoch_whole_batches(task):
    few = transfer.per_class(task.train, 1, seed=0)  # 3 images: batches of 3, not 4
    loader = recipe(task).loader(few, train=True, seed=0)
    batches = list(loader)
    assert len(loader) == len(batches) == 3  # 6 steps / 2 epochs, the 3 images repeated
    assert all(x.shape == (3, 3, 32, 32) and y.shape == (3,) for x, y in batches)
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    again = list(recipe(task).loader(few, train=True, seed=0))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))


def test_an_evaluation_loader_keeps_the_order_and_resizes_only_if_asked(task):
    loader = recipe(task, eval_batch_size=10).loader(task.test)
    x, y = next(iter(loader))
    assert x.shape == (10, 3, 32, 32) and torch.equal(y.cpu(), task.test.labels[:10])
    assert len(loader) == 3
    native = recipe(task).loader(task.test, resize=False)
    assert next(iter(native))[0].shape == (24, 3, 16, 16)
    same = recipe(task, image_size=16).loader(task.test)
    assert not isinstance(same, transfer.Resized)


def test_the_loader_normalises_with_the_data_it_is_given(task):
    other = dataclasses.replace(task, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    x = next(iter(recipe(task, image_size=16).loader(task.test, other)))[0]
    assert x.min() >= 0 and x.max() <= 1  # pixel / 255: not centred by task's mean 0.5
    x = next(iter(recipe(task, image_size=16).loader(task.test)))[0]
    assert x.min() < 0


def test_a_run_trains_in_place_and_is_repeatable(task):
    few = transfer.per_class(task.train, 4, seed=0)
    results = []
    for _ in range(2):
        model = tiny_model()
        before = model.fc.weight.clone()
        history, acc = recipe(task).run(model, few, seed=0, lr=0.05, curves=True)
        assert not torch.equal(model.fc.weight, before)
        results.append((model.fc.weight.detach().clone(), acc))
    assert len(history) == 2 and history[-1]["val_acc"] is not None
    assert 0.0 <= acc <= 1.0
    assert torch.equal(results[0][0], results[1][0]) and results[0][1] == results[1][1]


def test_a_run_takes_an_optimizer_of_your_own(task):
    model = tiny_model()
    groups = transfer.param_groups(model, lr=0.05, backbone_lr=0.0)
    optimizer = torch.optim.SGD(groups, momentum=0.9)
    stem = model.conv1.weight.clone()
    _, acc = recipe(task).run(model, task.train, seed=0, optimizer=optimizer)
    assert torch.equal(model.conv1.weight, stem)  # backbone lr 0: the stem did not move
    assert 0.0 <= acc <= 1.0


def test_bad_settings_are_clear_errors(task):
    with pytest.raises(ValueError, match="steps must be an int >= 3"):
        recipe(task, steps=2, epochs=3)
    with pytest.raises(ValueError, match="batch_size"):
        recipe(task, batch_size=0)
    with pytest.raises(ValueError, match="data must be a DataSplits"):
        transfer.FineTuneRecipe(task.train, image_size=16, steps=2, epochs=1, batch_size=2)
    with pytest.raises(ValueError, match="split must be an ImageTensorSet"):
        recipe(task).loader(task.train.images)
    model = tiny_model()
    with pytest.raises(ValueError, match="exactly one of lr and optimizer"):
        recipe(task).run(model, task.train, seed=0)
    with pytest.raises(ValueError, match="exactly one of lr and optimizer"):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        recipe(task).run(model, task.train, seed=0, lr=0.1, optimizer=optimizer)
    no_val = dataclasses.replace(task, val=None)
    with pytest.raises(ValueError, match=r"data\.val \(needed for curves=True\)"):
        recipe(no_val).run(model, task.train, seed=0, lr=0.1, curves=True)
