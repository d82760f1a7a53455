"""helpers.train.experiments: models x seeds through fit, tidy results, clear errors."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from helpers.train import describe_difference, paired_difference, run_experiment, summarize


def tiny_net(hidden: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, hidden, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(hidden, 3),
    )  # fmt: skip


@pytest.fixture(scope="module")
def loader() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 1, 6, 6, generator=g), torch.randint(0, 3, (8,), generator=g))] * 2


@pytest.fixture(scope="module")
def result(loader):
    factories = {"narrow": lambda: tiny_net(2), "wide": lambda: tiny_net(6)}
    return run_experiment(
        factories, loader, loader, seeds=(0, 1), epochs=2, lr=0.05, device="cpu",
        extra=lambda model: {"depth": len(model)},
    )  # fmt: skip


def test_curves_have_one_row_per_model_seed_and_epoch(result) -> None:
    curves = result.curves
    assert len(curves) == 2 * 2 * 2
    assert list(curves.groupby(["model", "seed"]).size()) == [2, 2, 2, 2]
    assert curves["train_err"].between(0, 100).all() and curves["val_err"].between(0, 100).all()


def test_final_is_the_last_epoch_of_each_run(result) -> None:
    final, curves = result.final, result.curves
    assert list(final["model"]) == ["narrow", "narrow", "wide", "wide"]
    assert list(final["seed"]) == [0, 1, 0, 1]
    last = curves[curves["epoch"] == 2].reset_index(drop=True)
    pd.testing.assert_series_equal(final["train_err"], last["train_err"], check_names=False)
    assert list(final["params"]) == [
        sum(p.numel() for p in tiny_net(h).parameters()) for h in (2, 2, 6, 6)
    ]
    assert (final["depth"] == 5).all()  # the extra column


def test_seeds_change_the_initial_weights(result) -> None:
    losses = result.curves[result.curves["epoch"] == 1].set_index(["model", "seed"])["train_loss"]
    assert losses[("wide", 0)] != losses[("wide", 1)]


def test_same_seed_same_numbers(loader) -> None:
    runs = [
        run_experiment({"net": tiny_net}, loader, seeds=(3,), epochs=1, device="cpu").final
        for _ in range(2)
    ]
    assert runs[0]["train_err"].item() == runs[1]["train_err"].item()
    assert math.isnan(runs[0]["val_err"].item())  # no validation loader


def test_summary_aggregates_over_seeds(result) -> None:
    summary = result.summary()
    assert list(summary.index) == ["narrow", "wide"]
    wide = result.final[result.final["model"] == "wide"]["train_err"]
    assert summary.loc["wide", "train_err mean"] == pytest.approx(wide.mean())
    assert summary.loc["wide", "train_err std"] == pytest.approx(wide.std())
    assert summary.loc["wide", "train_err max"] == wide.max()
    assert (summary["seeds"] == 2).all()


def test_summarize_names_a_missing_column() -> None:
    with pytest.raises(ValueError, match="test_err"):
        summarize(pd.DataFrame({"model": ["a"], "train_err": [1.0]}), ["test_err"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"factories": {}}, ValueError, "non-empty dict"),
        ({"factories": {"a": 3}}, TypeError, "callables"),
        ({"factories": {"a": lambda: "not a model"}}, TypeError, "not a model"),
        ({"seeds": ()}, ValueError, "at least one"),
        ({"seeds": (0, 0)}, ValueError, "distinct"),
        ({"seeds": (-1,)}, ValueError, "seed"),
        ({"seeds": 0}, TypeError, "sequence"),
        ({"epochs": None}, TypeError, "epochs="),
        ({"seed": 1}, TypeError, "seeds="),
    ],
)
def test_bad_arguments_are_named(loader, kwargs, error, match) -> None:
    args = {"factories": {"net": tiny_net}, "seeds": (0,), "epochs": 1, **kwargs}
    if args["epochs"] is None:
        del args["epochs"]
    factories = args.pop("factories")
    with pytest.raises(error, match=match):
        run_experiment(factories, loader, device="cpu", **args)


def _final() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["deep", "deep", "shallow", "shallow"],
            "seed": [0, 1, 0, 1],
            "train_err": [30.0, 34.0, 20.0, 21.0],
        }
    )


def test_paired_difference_pairs_by_seed() -> None:
    pairs = paired_difference(_final().iloc[::-1], "deep", "shallow")
    assert pairs["seed"].tolist() == [0, 1]
    assert pairs["difference"].tolist() == [10.0, 13.0]
    with pytest.raises(ValueError, match="no runs"):
        paired_difference(_final(), "deep", "missing")


def test_describe_difference_prints_effect_spread_and_count() -> None:
    text = describe_difference(
        _final(), "deep", "shallow", verdict=("trains worse than", "trains at least as well as")
    )
    assert "seed 0: 30.0 vs 20.0 %" in text and "seed 1: 34.0 vs 21.0 %" in text
    assert "+11.5 points (per seed +10.0, +13.0)" in text
    assert "deep 4.0, shallow 1.0 points" in text
    assert "deep trains worse than shallow in 2 of 2 seed(s)" in text
    assert "trains at least as well as it in 0 of 2" in text
    assert "trains worse" not in describe_difference(_final(), "deep", "shallow")
    one_seed = describe_difference(_final()[_final()["seed"] == 0], "deep", "shallow")
    assert "deep n/a (one run), shallow n/a (one run)" in one_seed
