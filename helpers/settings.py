"""The course's settings, shared by every notebook: quick/full mode, device, seeding, data root.

``COURSE_QUICK=1`` forces quick mode, ``COURSE_QUICK=0`` full mode; unset, a machine with
CUDA runs full mode and anything else runs quick mode. ``COURSE_DATA`` moves the data root.
"""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path

import numpy as np
import torch
import torchvision

from helpers.threads import ensure_threads, thread_choice

QUICK_ENV = "COURSE_QUICK"
DATA_ENV = "COURSE_DATA"
DEVICE_ENV = "COURSE_DEVICE"
OFFLINE_ENV = "COURSE_OFFLINE"

_REPO_ROOT = Path(__file__).resolve().parent.parent


def quick_mode() -> bool:
    """Whether notebooks should run their quick (smoke-test sized) variant.

    Reads ``COURSE_QUICK``: ``"1"`` forces quick, ``"0"`` forces full; unset means quick
    on a machine without CUDA and full with it. Any other value is an error, not a guess.
    """
    raw = os.environ.get(QUICK_ENV)
    if raw is None or raw.strip() == "":
        return not torch.cuda.is_available()
    value = raw.strip()
    if value == "1":
        return True
    if value == "0":
        return False
    raise ValueError(f"{QUICK_ENV} must be '1' (quick mode) or '0' (full mode), got {raw!r}")


def offline() -> bool:
    """Whether downloads are off (``COURSE_OFFLINE=1``; the test suite sets it).

    Offline, a dataset that is not on disk is a clear error (quick mode then falls back to an
    offline set) instead of a download attempt.
    """
    raw = os.environ.get(OFFLINE_ENV, "").strip()
    if raw in ("", "0"):
        return False
    if raw == "1":
        return True
    raise ValueError(f"{OFFLINE_ENV} must be '1' (no downloads) or '0', got {raw!r}")


class DeviceUnavailableError(ValueError, RuntimeError):
    """A valid device name whose hardware this machine lacks (e.g. "cuda" without a GPU)."""


def parse_device(spec: torch.device | str, what: str = "device") -> torch.device:
    """``spec`` as a torch.device, checked: the package's one device parser.

    ``what`` names the setting in the error (``device``, ``COURSE_DEVICE`` ...). Raises
    ValueError for a name torch does not know, and :class:`DeviceUnavailableError` (a
    ValueError and a RuntimeError) for CUDA on a machine without it.
    """
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"{what}={spec!r} is not a valid torch device (e.g. 'cpu', 'cuda', 'cuda:1')"
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"{what}={spec!r}, but CUDA is not available on this machine")
    return dev


def device() -> torch.device:
    """The device to train on: ``COURSE_DEVICE`` if set, else CUDA when available, else CPU."""
    requested = os.environ.get(DEVICE_ENV)
    if requested:
        return parse_device(requested, DEVICE_ENV)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run can be repeated.

    With ``deterministic=True`` cuDNN autotuning is off and torch is asked for
    deterministic algorithms (slower on a GPU, and an error where none exists).
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the legacy global RNG other code uses
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def data_root() -> Path:
    """Where datasets live: ``COURSE_DATA`` if set, else the repository's ``data/`` folder.

    Outside a checkout (``pip install`` from git, as on Colab) it is ``./data``.
    """
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override).expanduser()
    if (_REPO_ROOT / "pyproject.toml").is_file() and (_REPO_ROOT / "data").is_dir():
        return _REPO_ROOT / "data"
    return Path.cwd() / "data"


def describe_device(dev: torch.device | None = None) -> str:
    """A one-line human description of a device, e.g. ``cuda:0 (NVIDIA T4)``."""
    dev = device() if dev is None else dev
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if dev.type == "cpu":
        return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    return str(dev)


def banner(data_source: str | None = None) -> str:
    """The block every notebook prints first: mode, device, versions and data source."""
    quick = quick_mode()
    mode = "QUICK (smoke test: numbers are not results)" if quick else "FULL (the real experiment)"
    lines = [
        f"mode        : {mode}",
        f"device      : {describe_device()}",
        f"threads     : {torch.get_num_threads()} ({thread_choice()})",
        f"python      : {platform.python_version()}",
        f"torch       : {torch.__version__}   torchvision: {torchvision.__version__}",
        f"data root   : {data_root()}"
        + ("   (downloads off: COURSE_OFFLINE=1)" if offline() else ""),
    ]
    if data_source is not None:
        lines.append(f"data source : {data_source}")
    return "\n".join(lines)


def print_banner(data_source: str | None = None) -> None:
    """Choose the thread count (``helpers.threads.ensure_threads``), then print :func:`banner`.

    The first output of every notebook: where the course starts, so where it picks its threads.
    """
    ensure_threads()
    print(banner(data_source))
