"""Results of real runs, written where the course and the README can read them back.

A laptop-mode or GPU run writes small JSON records (and small checkpoints that later notebooks
reuse) under ``results/<mode>/`` in the repository, or under ``$COURSE_RESULTS``::

    results.write_record("resnet20_cifar10", {"test_acc": 0.81, ...})   # + machine and date
    results.save_model("resnet20_cifar10", model, {"recipe": ...})      # .pt (< 2 MB) + .json
    results.load_model("resnet20_cifar10", models.resnet20(num_classes=10))  # weights_only

Quick mode writes nothing, nor does laptop mode at toy size (``COURSE_SIZE=toy``): their
numbers are smoke tests, never results. Notebooks ask :func:`recording` first.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from helpers import settings

__all__ = ["load_model", "read_record", "recording", "results_dir", "save_model", "write_record"]

RESULTS_ENV = "COURSE_RESULTS"
MAX_CHECKPOINT_BYTES = 2_000_000  # checkpoints in git stay small (the repository's rule)


def results_dir(mode: str | None = None) -> Path:
    """``results/<mode>/`` of the repository (``$COURSE_RESULTS/<mode>/`` if set)."""
    mode = settings.mode() if mode is None else mode
    base = os.environ.get(RESULTS_ENV)
    root = Path(base).expanduser() if base else settings._REPO_ROOT / "results"
    return root / mode


def recording() -> bool:
    """Whether this run's numbers are results worth writing: not quick mode, not toy size."""
    return settings.mode() != "quick" and not settings.toy_size()


def _machine() -> dict[str, Any]:
    dev = settings.device()
    return {
        "device": settings.describe_device(dev),
        "cpu": settings.describe_cpu(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


def write_record(name: str, record: dict[str, Any], mode: str | None = None) -> Path:
    """Write ``record`` as ``results/<mode>/<name>.json`` with the mode, machine and date added.

    Refused in quick mode and at toy size (smoke tests are not results). Written atomically.
    """
    mode = settings.mode() if mode is None else mode
    if mode == "quick" or settings.toy_size():
        raise ValueError("quick mode and toy sizes write no results: their numbers are smoke tests")
    path = results_dir(mode) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {
        "name": name,
        "mode": mode,
        "date": datetime.date.today().isoformat(),
        "sizes": os.environ.get(settings.SIZE_ENV) or "as the mode sets them",
        **_machine(),
        **record,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(full, indent=1, default=float) + "\n")
    os.replace(tmp, path)
    return path


def read_record(name: str, mode: str = "laptop") -> dict[str, Any] | None:
    """The record ``results/<mode>/<name>.json``, or None when that run has not been made."""
    path = results_dir(mode) / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def save_model(name: str, model: nn.Module, record: dict[str, Any]) -> Path:
    """Save ``model``'s weights as ``results/<mode>/<name>.pt`` (atomic, at most 2 MB) and
    ``record`` beside it (:func:`write_record`); returns the checkpoint's path."""
    mode = settings.mode()
    json_path = write_record(name, record, mode)
    path = json_path.with_suffix(".pt")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    size = tmp.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        tmp.unlink()
        raise ValueError(
            f"{name}: {size:,} bytes, over the {MAX_CHECKPOINT_BYTES:,} allowed in git"
        )
    os.replace(tmp, path)
    return path


def load_model(name: str, model: nn.Module, mode: str = "laptop") -> nn.Module | None:
    """Load ``results/<mode>/<name>.pt`` into ``model`` (strict, ``weights_only=True``) and
    return it; None when that checkpoint does not exist."""
    path = results_dir(mode) / f"{name}.pt"
    if not path.is_file():
        return None
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model
