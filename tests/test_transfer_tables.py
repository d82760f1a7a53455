"""helpers.transfer tables: top-1 agreement, accuracy per seed, differences paired by seed."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch

from helpers import models, transfer
from helpers.data import DeviceLoader, make_shapes


@pytest.fixture(scope="module")
def loader() -> DeviceLoader:
    """24 shape images, 16x16, in a fixed order."""
    test = make_shapes(24, image_size=16, seed=0)
    return DeviceLoader.from_set(
        test, batch_size=10, mean=(0.5,) * 3, std=(0.25,) * 3, shuffle=False
    )


def test_top1_agreement_of_a_model_with_itself_and_with_another(loader):
    torch.manual_seed(0)
    net = models.resnet20(width=0.25, num_classes=6)
    other = copy.deepcopy(net)
    with torch.no_grad():
        other.fc.bias.copy_(torch.tensor([0.0, 0, 0, 0, 0, 100]))  # always class 5
    table = transfer.top1_agreement({"net": net, "copy": copy.deepcopy(net), "five": other}, loader)
    assert list(table.columns) == ["accuracy", "same top-1 as net"]
    assert list(table.index) == ["net", "copy", "five"]
    assert table.loc["copy", "same top-1 as net"] == 1.0
    labels = torch.cat([y for _, y in loader])
    assert table.loc["five", "accuracy"] == pytest.approx((labels == 5).float().mean().item())
    preds = net.eval()(torch.cat([x for x, _ in loader])).argmax(dim=1)
    assert table.loc["five", "same top-1 as net"] == pytest.approx((preds == 5).float().mean())


def test_top1_agreement_needs_models_and_a_fixed_order():
    with pytest.raises(ValueError, match="models is empty"):
        transfer.top1_agreement({}, [])
    test = make_shapes(24, image_size=16, seed=0)
    shuffled = DeviceLoader.from_set(test, batch_size=8, mean=(0.5,) * 3, std=(0.25,) * 3)
    net = models.resnet20(width=0.25, num_classes=6)
    with pytest.raises(ValueError, match="same order"):
        transfer.top1_agreement({"a": net, "b": net}, shuffled)


ACCS = {("b", 1): 0.5, ("b", 0): 0.7, ("a", 0): 0.2, ("a", 1): 0.4}


def test_seed_table_has_a_column_per_seed_then_mean_and_spread():
    table = transfer.seed_table(ACCS)
    assert list(table.index) == ["b", "a"]  # first seen
    assert list(table.columns) == ["seed 0", "seed 1", "mean", "spread (max - min)"]
    assert table.loc["b", "seed 0"] == 0.7 and table.loc["b", "seed 1"] == 0.5
    assert table.loc["b", "mean"] == pytest.approx(0.6)
    assert table.loc["a", "spread (max - min)"] == pytest.approx(0.2)
    assert list(transfer.seed_table(ACCS, order=["a", "b"]).index) == ["a", "b"]


def test_seed_table_refuses_missing_runs_and_bad_orders():
    with pytest.raises(ValueError, match=r"missing runs: \[\('a', 1\)\]"):
        transfer.seed_table({("a", 0): 0.1, ("b", 0): 0.2, ("b", 1): 0.3})
    with pytest.raises(ValueError, match="order must name every cell exactly once"):
        transfer.seed_table(ACCS, order=["a"])
    with pytest.raises(ValueError, match="order must name every cell exactly once"):
        transfer.seed_table(ACCS, order=["a", "b", "b"])
    with pytest.raises(ValueError, match="accs is empty"):
        transfer.seed_table({})
    with pytest.raises(ValueError, match=r"\(cell, seed\) pairs"):
        transfer.seed_table({"a": 0.1})


def test_paired_differences_subtract_seed_by_seed():
    table = transfer.seed_table(ACCS)
    diffs = transfer.paired_differences(table, {"b - a": ("b", "a"), "a - b": ("a", "b")})
    assert isinstance(diffs, pd.DataFrame)
    assert list(diffs.columns) == ["seed 0", "seed 1", "mean"]
    assert diffs.loc["b - a", "seed 0"] == pytest.approx(0.5)
    assert diffs.loc["b - a", "seed 1"] == pytest.approx(0.1)
    assert diffs.loc["b - a", "mean"] == pytest.approx(0.3)
    assert diffs.loc["a - b", "mean"] == pytest.approx(-0.3)


def test_paired_differences_name_what_is_wrong():
    table = transfer.seed_table(ACCS)
    with pytest.raises(ValueError, match=r"not rows of the table: \['c'\]"):
        transfer.paired_differences(table, {"x": ("a", "c")})
    with pytest.raises(ValueError, match=r"no 'seed \.\.\.' columns"):
        transfer.paired_differences(table[["mean"]], {"x": ("a", "b")})
    with pytest.raises(ValueError, match="pairs is empty"):
        transfer.paired_differences(table, {})
    with pytest.raises(ValueError, match=r"\['x'\] are not \(cell a, cell b\) tuples"):
        transfer.paired_differences(table, {"x": ("a",)})
