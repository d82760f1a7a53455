"""Block diagrams of residual blocks, drawn with matplotlib from a list of layer labels.

Each figure is generated here (no pasted images), in the style of He et al.'s figures: the
main path runs top to bottom, the shortcut runs down the right-hand side and joins it at the
addition (⊕). Every public function returns the ``Figure`` it draws::

    diagrams.basic_block()                 # He et al. 2016a, Fig. 2 / Fig. 5 (left)
    diagrams.basic_and_bottleneck()        # Fig. 5: basic block beside the bottleneck
    diagrams.shortcut_options()            # options A, B, C (section 3.3, Table 3)
    diagrams.stride_placement()            # ResNet50 v1 (stride in the 1x1) vs v1.5 (in the 3x3)
    diagrams.preactivation_vs_original()   # He et al. 2016b, Fig. 1(b) vs Fig. 4(e)
    diagrams.attention_placement()         # SE and CBAM inside a bottleneck (Hu / Woo et al.)

``draw_block`` draws one block on an Axes from plain strings, so a notebook can sketch a
variant of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

__all__ = [
    "attention_placement",
    "basic_and_bottleneck",
    "basic_block",
    "draw_block",
    "preactivation_vs_original",
    "shortcut_options",
    "stride_placement",
]

# One colour per kind of layer, so the eye can follow conv / BN / activation down the path.
_COLOURS = {"conv": "#cfe2f3", "bn": "#fff2cc", "act": "#d9ead3", "other": "#eeeeee"}
_HIGHLIGHT = "#cc0000"
_STEP = 1.0  # vertical distance between two boxes
_BOX_W, _BOX_H = 2.9, 0.62
_SHORTCUT_X = 2.75  # x of the shortcut's vertical line (the main path is at x = 0)


def _kind(label: str) -> str:
    text = label.lower()
    if "conv" in text:
        return "conv"
    if text.startswith("bn") or "batch" in text:
        return "bn"
    if any(a in text for a in ("relu", "swish", "silu", "gelu")):
        return "act"
    return "other"


def _box(ax: Axes, x: float, y: float, label: str, *, highlight: bool, width: float) -> None:
    edge = _HIGHLIGHT if highlight else "#444444"
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - _BOX_H / 2),
            width,
            _BOX_H,
            boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor=_COLOURS[_kind(label)],
            edgecolor=edge,
            linewidth=2.2 if highlight else 1.0,
        )
    )
    style = {"color": _HIGHLIGHT, "fontweight": "bold"} if highlight else {"color": "black"}
    ax.text(x, y, label, ha="center", va="center", fontsize=9, **style)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": "#333333"})


def _line(ax: Axes, xs: Sequence[float], ys: Sequence[float]) -> None:
    ax.plot(xs, ys, color="#333333", lw=1.2)


def draw_block(
    ax: Axes,
    main: Sequence[str],
    shortcut: str | None = None,
    *,
    after: Sequence[str] = ("ReLU",),
    title: str = "",
    highlight: Collection[int] = (),
    input_label: str = "x",
    output_label: str = "output",
) -> Axes:
    """Draw one residual block on ``ax``: ``main`` boxes, a shortcut, ⊕, then ``after`` boxes.

    main: labels of the residual branch F(x), top to bottom, e.g. ``["3x3 conv, 64", "BN",
        "ReLU", "3x3 conv, 64", "BN"]``.
    shortcut: None for the identity (a bare line labelled "identity"), else the label of the
        box on the shortcut (e.g. ``"1x1 conv, stride 2\\n+ BN"``).
    after: boxes after the addition (``()`` for none, as in a pre-activation block).
    highlight: indices into ``main`` drawn in red (e.g. the layer that carries the stride).
    """
    if not main:
        raise ValueError("main must list at least one layer of the residual branch")
    bad = [i for i in highlight if not 0 <= i < len(main)]
    if bad:
        raise ValueError(f"highlight indices {bad} are outside main's {len(main)} layers")
    y_add = -(len(main) + 1.0) * _STEP
    ax.text(0, 0, input_label, ha="center", va="center", fontsize=10, fontweight="bold")
    branch = -0.45  # where the shortcut leaves the main path
    ax.plot([0], [branch], marker="o", markersize=4, color="#333333")
    _line(ax, [0, 0], [-0.2, branch])
    previous = branch
    for i, label in enumerate(main):
        y = -(i + 1.1) * _STEP
        _arrow(ax, (0, previous), (0, y + _BOX_H / 2))
        _box(ax, 0, y, label, highlight=i in highlight, width=_BOX_W)
        previous = y - _BOX_H / 2
    _arrow(ax, (0, previous), (0, y_add + 0.2))
    ax.add_patch(plt.Circle((0, y_add), 0.2, facecolor="white", edgecolor="#333333"))
    ax.text(0, y_add, "+", ha="center", va="center", fontsize=12)

    # The shortcut: right from the input, down, and back left into the addition.
    _line(ax, [0, _SHORTCUT_X, _SHORTCUT_X], [branch, branch, y_add])
    _arrow(ax, (_SHORTCUT_X, y_add), (0.2, y_add))
    y_mid = y_add / 2
    if shortcut is None:
        ax.text(_SHORTCUT_X + 0.1, y_mid, "identity", rotation=-90, ha="left", va="center",
                fontsize=9, style="italic")  # fmt: skip
    else:
        _box(ax, _SHORTCUT_X, y_mid, shortcut, highlight=False, width=2.3)

    previous = y_add - 0.2
    y = y_add
    for label in after:
        y -= _STEP
        _arrow(ax, (0, previous), (0, y + _BOX_H / 2))
        _box(ax, 0, y, label, highlight=False, width=_BOX_W)
        previous = y - _BOX_H / 2
    _arrow(ax, (0, previous), (0, y - 0.6))
    ax.text(0, y - 0.8, output_label, ha="center", va="center", fontsize=10, fontweight="bold")

    ax.set_xlim(-_BOX_W / 2 - 0.1, _SHORTCUT_X + 1.25)
    ax.set_ylim(y - 1.1, 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def _figure(n_panels: int, n_rows_of_boxes: int) -> tuple[Figure, list[Axes]]:
    height = 0.55 * (n_rows_of_boxes + 3)
    fig, axes = plt.subplots(1, n_panels, figsize=(3.6 * n_panels, height), layout="constrained")
    return fig, list(axes) if n_panels > 1 else [axes]


def _basic(channels: int, stride: int = 1) -> list[str]:
    first = f"3x3 conv, {channels}" + (f", stride {stride}" if stride != 1 else "")
    return [first, "BN", "ReLU", f"3x3 conv, {channels}", "BN"]


def _bottleneck(planes: int, stride: int = 1, *, stride_in_1x1: bool = False) -> list[str]:
    tag = f", stride {stride}" if stride != 1 else ""
    return [
        f"1x1 conv, {planes}" + (tag if stride_in_1x1 else ""),
        "BN",
        "ReLU",
        f"3x3 conv, {planes}" + ("" if stride_in_1x1 else tag),
        "BN",
        "ReLU",
        f"1x1 conv, {4 * planes}",
        "BN",
    ]


def basic_block() -> Figure:
    """The basic block of ResNet18/34 and the CIFAR ResNets: two 3x3 conv-BN layers + x."""
    fig, (ax,) = _figure(1, 6)
    draw_block(ax, _basic(64), title="Basic block (64 channels)", input_label="x: 64 channels")
    return fig


def basic_and_bottleneck() -> Figure:
    """He et al. 2016a, Fig. 5: a basic block on 64 channels beside a bottleneck on 256."""
    fig, axes = _figure(2, 9)
    draw_block(axes[0], _basic(64), title="Basic block (ResNet18/34)", input_label="64-d")
    draw_block(axes[1], _bottleneck(64), title="Bottleneck (ResNet50/101/152)",
               input_label="256-d")  # fmt: skip
    return fig


def shortcut_options() -> Figure:
    """The three shortcut options of He et al. 2016a on a block that goes 16 -> 32 channels."""
    fig, axes = _figure(3, 6)
    main = _basic(32, stride=2)
    options = (
        ("A: zero-padding identity", "x[:, :, ::2, ::2]\n+ zero channels",
         "other blocks: identity; no parameters"),
        ("B: projection where needed", "1x1 conv, 32,\nstride 2 + BN",
         "other blocks: identity"),
        ("C: projection everywhere", "1x1 conv, 32,\nstride 2 + BN",
         "other blocks: 1x1 conv + BN too"),
    )  # fmt: skip
    for ax, (title, shortcut, note) in zip(axes, options, strict=True):
        draw_block(ax, main, shortcut, title=f"{title}\n({note})", highlight=(0,),
                   input_label="x: 16 ch, HxW", output_label="32 ch, H/2 x W/2")  # fmt: skip
    return fig


def stride_placement() -> Figure:
    """ResNet50 v1 (stride 2 on the first 1x1 conv) beside v1.5 (stride 2 on the 3x3 conv)."""
    fig, axes = _figure(2, 11)
    shortcut = "1x1 conv, 512,\nstride 2 + BN"
    for ax, v1, title in (
        (axes[0], True, "v1 (paper, Caffe)"),
        (axes[1], False, "v1.5 (torchvision)"),
    ):
        draw_block(ax, _bottleneck(128, 2, stride_in_1x1=v1), shortcut,
                   title=f"{title}: first block of layer2", highlight=(0,) if v1 else (3,),
                   input_label="x: 256 ch, 56x56", output_label="512 ch, 28x28")  # fmt: skip
    return fig


def preactivation_vs_original() -> Figure:
    """He et al. 2016b: the original block (ReLU after ⊕) beside the pre-activation block."""
    fig, axes = _figure(2, 7)
    draw_block(axes[0], _basic(64), title="Original (He et al. 2016a)\nReLU after the addition")
    draw_block(axes[1], ["BN", "ReLU", "3x3 conv, 64", "BN", "ReLU", "3x3 conv, 64"], after=(),
               title="Pre-activation (He et al. 2016b)\nnothing after the addition")  # fmt: skip
    return fig


def attention_placement() -> Figure:
    """Where SE (Hu et al. 2018, Fig. 3) and CBAM (Woo et al. 2018, Fig. 3) sit in a bottleneck.

    The module re-weights the residual branch after its last BN, before the addition; the
    shortcut is left alone. CBAM is two modules in sequence: channel gates, then spatial gates.
    """
    fig, axes = _figure(2, 12)
    se = [*_bottleneck(64), "SE: channel gates\nσ(MLP(avg))"]
    cbam = [*_bottleneck(64), "CBAM: channel gates\nσ(MLP(avg)+MLP(max))",
            "CBAM: spatial gates\nσ(7x7 on [mean; max])"]  # fmt: skip
    draw_block(axes[0], se, title="SE-ResNet bottleneck", highlight=(8,), input_label="256-d")
    draw_block(axes[1], cbam, title="CBAM-ResNet bottleneck", highlight=(8, 9),
               input_label="256-d")  # fmt: skip
    return fig
