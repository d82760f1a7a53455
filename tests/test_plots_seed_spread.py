"""helpers.plots.plot_seed_spread: one dot per seed, one bar per model."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from helpers.plots import plot_seed_spread


def test_one_bar_per_model_at_its_mean_and_one_dot_per_seed() -> None:
    final = pd.DataFrame(
        {"model": ["b", "b", "a", "a"], "seed": [0, 1, 0, 1], "val_err": [10.0, 20.0, 4.0, 6.0]}
    )
    fig = plot_seed_spread(final)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["b", "a"]
    assert [bar.get_height() for bar in ax.patches] == [15.0, 5.0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 4
    plt.close(fig)


def test_a_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match=r"no column\(s\) \['val_err'\]"):
        plot_seed_spread(pd.DataFrame({"model": ["a"], "seed": [0]}))
