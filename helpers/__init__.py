"""Hands-on ResNet helper package: models, data, training, analysis and plots for the course.

Submodules are imported on first use (``helpers.models``, ``helpers.train`` ...), so
``import helpers`` stays fast and a notebook pays only for what it touches.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .threads import configure_threads

__version__ = "0.1.0"

# One thread per idle core, chosen once per process (see helpers/threads.py): a busy laptop
# then slows down by the share of the CPU it lost, not several times more.
configure_threads()

_SUBMODULES = (
    "analysis",
    "calibration",
    "cam",
    "check",
    "config",
    "data",
    "diagrams",
    "excitation",
    "experiments",
    "mixed_precision",
    "models",
    "overhead",
    "plots",
    "speed",
    "threads",
    "timing",
    "train",
    "transfer",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
