"""helpers.plots.diagrams: the block figures are drawn from the labels they should show."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from helpers import plots

HIGHLIGHT = "#cc0000"


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_text()]  # arrows are empty texts


def highlighted(ax) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_color() == HIGHLIGHT]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_basic_block_has_two_3x3_convs_and_an_identity_shortcut() -> None:
    (ax,) = plots.diagrams.basic_block().axes
    labels = texts(ax)
    assert labels.count("3x3 conv, 64") == 2
    assert labels.count("BN") == 2 and labels.count("ReLU") == 2  # one inside, one after +
    assert "identity" in labels and "+" in labels


def test_bottleneck_reduces_then_expands() -> None:
    basic, bottleneck = plots.diagrams.basic_and_bottleneck().axes
    assert texts(bottleneck)[:1] == ["256-d"]
    convs = [t for t in texts(bottleneck) if "conv" in t]
    assert convs == ["1x1 conv, 64", "3x3 conv, 64", "1x1 conv, 256"]
    assert [t for t in texts(basic) if "conv" in t] == ["3x3 conv, 64", "3x3 conv, 64"]


def test_shortcut_options_differ_only_in_the_shortcut() -> None:
    axes = plots.diagrams.shortcut_options().axes
    assert [ax.get_title()[0] for ax in axes] == ["A", "B", "C"]
    shortcut_a, shortcut_b, shortcut_c = (texts(ax) for ax in axes)
    assert any("zero channels" in t for t in shortcut_a)
    assert not any("1x1 conv" in t for t in shortcut_a)
    assert any("1x1 conv" in t for t in shortcut_b) and any("1x1 conv" in t for t in shortcut_c)
    assert "identity" in axes[1].get_title() and "1x1 conv" in axes[2].get_title()


def test_stride_placement_marks_the_strided_conv() -> None:
    v1, v15 = plots.diagrams.stride_placement().axes
    assert highlighted(v1) == ["1x1 conv, 128, stride 2"]
    assert highlighted(v15) == ["3x3 conv, 128, stride 2"]


def test_preactivation_block_has_nothing_after_the_addition() -> None:
    original, pre = plots.diagrams.preactivation_vs_original().axes
    assert texts(pre)[1] == "BN"  # after the input label, BN comes first
    after_add = texts(pre)[texts(pre).index("+") + 1 :]
    assert after_add == ["identity", "output"]  # no ReLU after the addition
    assert texts(original)[texts(original).index("+") + 1 :] == ["identity", "ReLU", "output"]


def test_draw_block_rejects_bad_input() -> None:
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="at least one"):
        plots.diagrams.draw_block(ax, [])
    with pytest.raises(ValueError, match="outside"):
        plots.diagrams.draw_block(ax, ["BN"], highlight=(3,))
