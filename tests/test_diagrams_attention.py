"""plots.diagrams.attention_placement: the module sits after the last BN, before the addition."""

from __future__ import annotations

import matplotlib.pyplot as plt

from helpers import plots

HIGHLIGHT = "#cc0000"


def test_attention_boxes_follow_the_last_bn_and_precede_the_addition() -> None:
    se, cbam = plots.diagrams.attention_placement().axes
    for ax, n_attention in ((se, 1), (cbam, 2)):
        labels = [t.get_text() for t in ax.texts if t.get_text()]
        first = next(i for i, t in enumerate(labels) if "gates" in t)
        assert labels[first - 1] == "BN" and labels[first - 2] == "1x1 conv, 256"
        assert labels[first + n_attention] == "+"  # the addition comes right after
        red = [t.get_text() for t in ax.texts if t.get_color() == HIGHLIGHT]
        assert len(red) == n_attention and all("gates" in t for t in red)
    assert any("spatial" in t.get_text() for t in cbam.texts)
    plt.close("all")
