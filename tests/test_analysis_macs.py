"""helpers.inspection.macs_per_stage: compute per stage and per block."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import inspection, models


@pytest.fixture(scope="module")
def resnet34_macs():
    with torch.device("meta"):
        model = models.resnet34()
    return inspection.macs_per_stage(model, (1, 3, 224, 224)), model


def test_stages_add_up_to_the_whole_network(resnet34_macs) -> None:
    table, model = resnet34_macs
    assert list(table["stage"]) == ["stem", "layer1", "layer2", "layer3", "layer4", "pool", "fc"]
    assert table["macs"].sum() == inspection.count_flops(model, (1, 3, 224, 224))
    assert table["percent"].sum() == pytest.approx(100.0)


def test_blocks_cost_about_the_same_in_every_stage(resnet34_macs) -> None:
    table, _ = resnet34_macs
    stages = table.set_index("stage").loc[["layer1", "layer2", "layer3", "layer4"]]
    assert list(stages["blocks"]) == [3, 4, 6, 3]
    per_block = stages["macs_per_block"]
    assert per_block.max() / per_block.min() < 1.1  # so a stage costs ~ its block count
    assert math.isnan(table.set_index("stage").loc["stem", "macs_per_block"])


def test_cifar_layout_has_three_stages() -> None:
    with torch.device("meta"):
        model = models.resnet20()
    table = inspection.macs_per_stage(model, (1, 3, 32, 32))
    assert list(table[table["blocks"] > 0]["stage"]) == ["layer1", "layer2", "layer3"]
