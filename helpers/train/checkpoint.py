"""Checkpoints that resume exactly: atomic writes, ``weights_only`` loads, RNG states, checks.

A checkpoint is one ``torch.save`` dict holding the model, optimizer, scheduler and grad-scaler
states, the epoch and step reached, the history so far (epoch records), every random stream
training draws from, and ``asdict(config)`` of the run's :class:`TrainConfig` (a resumed run
must agree on the fields that shape the trajectory).
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "LOCK_NAME",
    "CheckpointError",
    "DirLock",
    "check_compatible",
    "get_rng_state",
    "load_checkpoint",
    "model_signature",
    "prepare_dir",
    "remove_stale_temporaries",
    "save_checkpoint",
    "set_rng_state",
]

CHECKPOINT_NAME = "checkpoint.pt"
LOCK_NAME = ".checkpoint.lock"  # held by the run that writes the folder's checkpoint
CHECKPOINT_FORMAT = "helpers.train/2"  # 2: the run config is asdict(TrainConfig)


class CheckpointError(RuntimeError):
    """A checkpoint file is corrupt, or was written by a run with other arguments or model."""


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`helpers.train.fit` (on the CPU).

    ``weights_only=True``: only tensors and plain containers are unpickled, never code.
    Raises CheckpointError naming the file when it is truncated, corrupt or not a checkpoint,
    and an OSError of the same kind (e.g. PermissionError) when it cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        if not (isinstance(err, PermissionError) or err.errno in _FILE_SYSTEM_ERRORS):
            raise _corrupt(path, err) from err  # e.g. EINVAL: a seek past a truncated end
        # The file system refused (permissions, I/O): the checkpoint itself may be fine, so
        # the advice must not be to delete it.
        raise _os_error(err, f"cannot read checkpoint {path}") from err
    except Exception as err:  # a broken zip, a bad pickle, an EOF: torch raises several kinds
        raise _corrupt(path, err) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a helpers.train checkpoint (no format {CHECKPOINT_FORMAT!r} key)"
        )
    return ckpt


# Errors of the file system or the device, not of the file's contents.
_FILE_SYSTEM_ERRORS = {
    errno.EACCES,
    errno.EPERM,
    errno.EIO,
    errno.ESTALE,
    errno.ENXIO,
    errno.ENODEV,
}


def _corrupt(path: Path, err: BaseException) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is corrupt or truncated and cannot be resumed from "
        f"({type(err).__name__}: {err}). Delete it to start over."
    )


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``payload`` to a temporary file in the same folder, then rename it over ``path``.

    ``os.replace`` is atomic, so a crash at any moment (even kill -9) leaves either the old
    checkpoint or the new one, never half a file. The file gets the mode a new file gets
    under the umask (e.g. 0644), as ``open`` would give it, not mkstemp's private 0600.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # POSIX
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it: put it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _os_error(err: OSError, what: str) -> OSError:
    """``err`` as the same kind of OSError, saying ``what`` failed and, for a permission
    error, who owns the file and its mode."""
    detail = err.strerror or str(err)
    name = err.filename
    if isinstance(err, PermissionError) and name is not None:
        with contextlib.suppress(OSError):
            info = os.stat(name)
            detail += f" ({name} has mode {info.st_mode & 0o777:04o}, owner uid {info.st_uid})"
        detail += "; run as a user who may read it, or make it readable (chmod)"
    new = type(err)(f"{what}: {detail}")
    new.errno = err.errno
    return new


def prepare_dir(folder: str | os.PathLike) -> Path:
    """Create the checkpoint folder if needed and check that files can be written in it.

    Called before any work (data loading, an epoch of training), so that a folder that
    cannot hold the checkpoint is an error at once, not after the first epoch.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"checkpoint_dir {str(folder)!r} is not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise _os_error(
            err,
            f"checkpoint_dir {str(folder)!r} cannot hold checkpoints (choose a folder you "
            "can write to)",
        ) from err
    return folder


def remove_stale_temporaries(folder: str | os.PathLike, name: str = CHECKPOINT_NAME) -> list[Path]:
    """Delete ``.<name>.*.tmp`` files left by a run killed while saving; returns them.

    Only call it while holding the folder's :class:`DirLock`: then no save is under way.
    """
    stale = sorted(Path(folder).glob(f".{name}.*.tmp"))
    for tmp in stale:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return stale


class DirLock:
    """An exclusive lock on a checkpoint folder, so that two runs cannot write one checkpoint.

    The lock file (``.checkpoint.lock``) says who holds it: process id, host, start time and
    command line. ``flock`` locks end with the process, so a run killed with ``kill -9``
    leaves no stale lock. Where ``fcntl`` is missing (Windows) it locks nothing.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._file: Any = None

    def acquire(self) -> DirLock:
        """Take the lock, or raise CheckpointError naming the run that holds it."""
        try:
            import fcntl  # here, not at the top: the module does not exist on Windows
        except ImportError:
            return self
        while True:
            f = open(self.path, "a+")  # noqa: SIM115 (held open for as long as the lock)
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "a process that has not said who it is"
                f.close()
                raise CheckpointError(
                    f"checkpoint_dir {self.path.parent} is in use by another run ({holder}). "
                    "Two runs saving one checkpoint would overwrite each other: wait for it to "
                    "end (or stop it), or use another checkpoint_dir."
                ) from None
            # The holder may have removed the file between our open and our lock: then we
            # locked a file nobody else will see, so try again on the one now at the path.
            try:
                same = os.stat(self.path).st_ino == os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            f.close()
        f.seek(0)
        f.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        f.write(
            f"pid {os.getpid()} on {socket.gethostname()}, since {started}: {' '.join(sys.argv)}"
        )
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        """Remove the lock file and let go of the lock (nothing if not held)."""
        if self._file is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # before unlocking: a waiting run then retries on a new file
        self._file.close()  # closing the file releases the flock
        self._file = None

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def model_signature(model: nn.Module) -> list[list[Any]]:
    """``[name, shape]`` of every tensor in the model's state dict (to tell models apart)."""
    return [[name, list(t.shape)] for name, t in model.state_dict().items()]


def check_compatible(
    ckpt: dict[str, Any], expected: dict[str, Any], model: nn.Module, path: str | os.PathLike
) -> None:
    """Raise CheckpointError listing every setting and model tensor that differs.

    ``expected``: this run's settings by name (the TrainConfig fields a resume must agree
    on, and facts of the run such as ``steps_per_epoch``, the modules, the data's identity);
    the checkpoint's are looked up in its ``config`` and ``run`` entries. Nested values are
    compared leaf by leaf, so that a difference names e.g. ``data.train.seed``.
    """
    problems = []
    stored = {**ckpt["config"], **ckpt["run"]}
    saved = _flatten({key: stored.get(key) for key in expected})
    ours = _flatten(expected)
    differing: dict[str, list[str]] = {}  # by top-level setting: "modules", "data" ...
    for key in sorted(set(saved) | set(ours)):
        if saved.get(key) != ours.get(key):
            differing.setdefault(key.split(".")[0].split("[")[0], []).append(
                f"{key}: checkpoint has {saved.get(key)!r}, this call has {ours.get(key)!r}"
            )
    for top, lines in differing.items():
        problems.extend(lines[:5])
        if len(lines) > 5:
            problems.append(f"... and {len(lines) - 5} more differences under {top!r}")
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
            "Resume with the model, data and arguments it was written with, or use another "
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
