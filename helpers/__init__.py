"""Hands-on ResNet helper package: models, data, training, inspection and plots for the course.

The layout, bottom to top (each layer imports only the ones below it; tests/test_layout.py
checks it):

    validate, eval_mode, images, threads, settings, timing,  the ground floor
    results
    models, data                                             what is trained, on what
    train                                                    fit, evaluate, the CLI
    inspection, measurement, plots, cam, transfer            reading out, timing, drawing
    check                                                    the notebooks' self-checks

Submodules are imported on first use (``helpers.models``, ``helpers.train`` ...), so
``import helpers`` stays fast, changes nothing in the process (the thread count is chosen by
``helpers.settings.print_banner`` and the command line, not here), and a notebook pays only
for what it touches.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

_SUBMODULES = (
    "cam",
    "check",
    "data",
    "eval_mode",
    "images",
    "inspection",
    "measurement",
    "models",
    "plots",
    "results",
    "settings",
    "threads",
    "timing",
    "train",
    "transfer",
    "validate",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
