"""Tests of helpers.plots: figure contents (axes, lines, titles, patches), not pixels.

tests/conftest.py selects the headless Agg backend.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from helpers.data import ImageTensorSet
from helpers.plots import plot_confusion_matrix, plot_history, show_images


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def history_frame(offset: float = 0.0, with_val: bool = True) -> pd.DataFrame:
    epochs = np.arange(1, 5)
    return pd.DataFrame(
        {
            "epoch": epochs,
            "train_loss": 2.0 / epochs + offset,
            "train_acc": 0.2 * epochs,
            "val_loss": 2.2 / epochs + offset if with_val else np.nan,
            "val_acc": 0.18 * epochs if with_val else np.nan,
            "lr": 0.1 / epochs,
            "time": np.ones(4),
        }
    )


class FakeHistory:
    """Stands in for helpers.train.History: anything with .to_dataframe() is accepted."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df

    def to_dataframe(self) -> pd.DataFrame:
        return self.df


# --------------------------------------------------------------------------- plot_history


def test_plot_history_one_run_train_dashed_val_solid():
    fig = plot_history(FakeHistory(history_frame()))
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title() == "Loss" and acc_ax.get_title() == "Accuracy"
    styles = {line.get_label(): line.get_linestyle() for line in loss_ax.get_lines()}
    assert styles == {"train": "--", "val": "-"}
    train_line = loss_ax.get_lines()[0]
    assert np.allclose(train_line.get_ydata(), history_frame()["train_loss"])
    assert loss_ax.get_xlabel() == "epoch"


def test_plot_history_compares_runs_one_colour_each():
    runs = {"resnet20": history_frame(), "plain20": FakeHistory(history_frame(0.5))}
    fig = plot_history(runs, metrics=("loss", "acc", "lr"))
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Accuracy", "Learning rate"]
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == [
        "resnet20 train",
        "resnet20 val",
        "plain20 train",
        "plain20 val",
    ]
    colours = [line.get_color() for line in lines]
    assert colours[0] == colours[1] and colours[2] == colours[3] and colours[0] != colours[2]
    assert len(fig.axes[2].get_lines()) == 2  # one lr line per run
    assert fig.axes[2].get_yscale() == "log"


def test_plot_history_skips_missing_validation():
    fig = plot_history(history_frame(with_val=False), metrics="loss")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train"]


def test_plot_history_errors():
    with pytest.raises(ValueError, match=r"top5.*columns"):
        plot_history(history_frame(), metrics=("top5",))
    with pytest.raises(TypeError, match="to_dataframe"):
        plot_history([1, 2, 3])
    with pytest.raises(TypeError, match="run 'a'"):
        plot_history({"a": 3})
    with pytest.raises(ValueError, match="empty"):
        plot_history({})


# --------------------------------------------------------------------------- confusion matrix


def test_confusion_matrix_normalised_rows():
    cm = torch.tensor([[8, 2, 0], [1, 1, 0], [0, 0, 0]])
    fig = plot_confusion_matrix(cm, ["a", "b", "c"])
    ax = fig.axes[0]
    values = np.asarray(ax.collections[0].get_array()).reshape(3, 3)
    assert np.allclose(values, [[0.8, 0.2, 0], [0.5, 0.5, 0], [0, 0, 0]])  # empty row stays 0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert len(ax.texts) == 9 and ax.texts[0].get_text() == "0.80"
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    assert "row-normalised" in ax.get_title()


def test_confusion_matrix_counts_and_errors():
    fig = plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["x", "y"], normalize=False)
    assert [t.get_text() for t in fig.axes[0].texts] == ["3", "1", "0", "4"]
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(np.zeros((2, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="3 classes"):
        plot_confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"])


# --------------------------------------------------------------------------- show_images


def test_show_images_grid_titles_and_boxes():
    images = torch.randint(0, 256, (10, 3, 16, 16), dtype=torch.uint8)
    labels = torch.arange(10) % 3
    boxes = torch.tensor([[2.0, 3.0, 9.0, 12.0]]).repeat(10, 1)
    fig = show_images(images, labels, classes=["a", "b", "c"], boxes=boxes, ncols=4)
    assert len(fig.axes) == 12  # 3 rows of 4
    shown = [ax for ax in fig.axes if ax.get_images()]
    assert len(shown) == 10
    assert [ax.get_title() for ax in shown[:4]] == ["a", "b", "c", "a"]
    rect = shown[0].patches[0]
    assert rect.get_xy() == (1.5, 2.5) and rect.get_width() == 8 and rect.get_height() == 10
    assert np.allclose(shown[0].get_images()[0].get_array(), images[0].permute(1, 2, 0) / 255)


def test_show_images_denormalises_float_and_marks_predictions():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    normalised = (images / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1
    )
    fig = show_images(
        normalised, [0, 1, 0, 1], ["cat", "dog"], mean=mean, std=std, preds=[0, 0, 0, 1]
    )
    shown = fig.axes[:4]
    assert np.allclose(
        shown[1].get_images()[0].get_array(), images[1].permute(1, 2, 0) / 255, atol=1e-5
    )
    assert shown[0].title.get_color() == "green" and shown[1].title.get_color() == "red"
    assert shown[1].get_title() == "cat (dog)"  # predicted (true)


def test_show_images_takes_an_image_tensor_set_and_grey_images():
    data = ImageTensorSet(
        torch.zeros(3, 1, 8, 8, dtype=torch.uint8), torch.tensor([2, 0, 1]), torch.ones(3, 4)
    )
    fig = show_images(data, classes=["a", "b", "c"])
    assert [ax.get_title() for ax in fig.axes] == ["c", "a", "b"]
    assert all(len(ax.patches) == 1 for ax in fig.axes)
    assert fig.axes[0].get_images()[0].get_cmap().name == "gray"


def test_show_images_errors():
    with pytest.raises(ValueError, match="mean= and std="):
        show_images(torch.randn(2, 3, 8, 8) * 3)
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        show_images(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), labels=[0, 1, 2])
    with pytest.raises(ValueError, match="1 or 3 channels"):
        show_images(torch.zeros(2, 8, 8, 3, dtype=torch.uint8))
