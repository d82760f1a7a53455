"""Checkpoints that resume exactly: atomic writes, ``weights_only`` loads, RNG states, checks.

A checkpoint is one ``torch.save`` dict holding the model, optimizer, scheduler and grad-scaler
states, the epoch and step reached, the history so far (epoch records), every random stream
training draws from, and ``asdict(config)`` of the run's :class:`TrainConfig` (a resumed run
must agree on the fields that shape the trajectory).
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "CheckpointError",
    "check_compatible",
    "get_rng_state",
    "load_checkpoint",
    "model_signature",
    "save_checkpoint",
    "set_rng_state",
]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "helpers.train/2"  # 2: the run config is asdict(TrainConfig)


class CheckpointError(RuntimeError):
    """A checkpoint file is corrupt, or was written by a run with other arguments or model."""


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`helpers.train.fit` (on the CPU).

    ``weights_only=True``: only tensors and plain containers are unpickled, never code.
    Raises CheckpointError naming the file when it is truncated, corrupt or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a broken zip, a bad pickle, an EOF: torch raises several kinds
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated and cannot be resumed from "
            f"({type(err).__name__}: {err}). Delete it to start over."
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a helpers.train checkpoint (no format {CHECKPOINT_FORMAT!r} key)"
        )
    return ckpt


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``payload`` to a temporary file in the same folder, then rename it over ``path``.

    ``os.replace`` is atomic, so a crash at any moment (even kill -9) leaves either the old
    checkpoint or the new one, never half a file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def model_signature(model: nn.Module) -> list[list[Any]]:
    """``[name, shape]`` of every tensor in the model's state dict (to tell models apart)."""
    return [[name, list(t.shape)] for name, t in model.state_dict().items()]


def check_compatible(
    ckpt: dict[str, Any], expected: dict[str, Any], model: nn.Module, path: str | os.PathLike
) -> None:
    """Raise CheckpointError listing every setting and model tensor that differs.

    ``expected``: this run's settings by name (the TrainConfig fields a resume must agree
    on, and facts of the run such as ``steps_per_epoch``); the checkpoint's are looked up
    in its ``config`` and ``run`` entries.
    """
    problems = []
    stored = {**ckpt["config"], **ckpt["run"]}
    saved = _flatten({key: stored.get(key) for key in expected})
    ours = _flatten(expected)
    for key in sorted(set(saved) | set(ours)):
        if saved.get(key) != ours.get(key):
            problems.append(
                f"{key}: checkpoint has {saved.get(key)!r}, this call has {ours.get(key)!r}"
            )
    theirs = dict(map(tuple, ckpt["model_signature"]))
    mine = dict(map(tuple, model_signature(model)))
    differences = (
        ("model tensors missing from the checkpoint", [k for k in mine if k not in theirs]),
        ("checkpoint tensors the model does not have", [k for k in theirs if k not in mine]),
        (
            "tensor shapes differ (checkpoint -> model)",
            [f"{k} {theirs[k]} -> {mine[k]}" for k in mine if k in theirs and theirs[k] != mine[k]],
        ),
    )
    for label, items in differences:
        if items:
            more = f" ... ({len(items)} in all)" if len(items) > 5 else ""
            problems.append(f"{label}: {', '.join(items[:5])}{more}")
    if problems:
        listing = "\n  - ".join(problems)
        raise CheckpointError(
            f"checkpoint {path} was written by a different run and cannot be resumed:\n"
            f"  - {listing}\n"
            "Call fit with the model and arguments it was written with, or use another "
            "checkpoint_dir (or delete the file) to start a new run."
        )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": [{"lr": 1}]} -> {"a[0].lr": 1}, so a mismatch names the exact setting."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def get_rng_state() -> dict[str, Any]:
    """Every random stream training draws from: torch (CPU and CUDA), NumPy and Python."""
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global stream user code uses)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        # NumPy's Mersenne-Twister key is a uint32 array; stored as an int64 tensor so that
        # torch.load(weights_only=True) reads it back.
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    n = state["numpy"]
    key = n["key"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", key, n["pos"], n["has_gauss"], n["cached_gaussian"]))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
