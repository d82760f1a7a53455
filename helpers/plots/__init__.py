"""Figures: training curves, confusion matrices, image grids, reliability diagrams, block diagrams.

    from helpers import plots
    plots.plot_history(history)                 # curves of a History (or several, in a dict)
    plots.show_images(images, labels, classes)  # an image grid
    plots.diagrams.basic_and_bottleneck()       # the block diagrams of notebooks 01-05

Grad-CAM grids live with Grad-CAM (``helpers.cam.plot_cam_grid``); both show images through
``helpers.images.to_display``.
"""

from helpers.plots import diagrams
from helpers.plots.figures import (
    lr_curve,
    plot_confusion_matrix,
    plot_history,
    plot_lr_curves,
    plot_seed_spread,
    reliability_diagram,
    show_images,
)

__all__ = [
    "diagrams",
    "lr_curve",
    "plot_confusion_matrix",
    "plot_history",
    "plot_lr_curves",
    "plot_seed_spread",
    "reliability_diagram",
    "show_images",
]
