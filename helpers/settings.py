"""The course's settings, shared by every notebook: the mode, device, seeding, data root.

Three modes, one code path (each notebook keeps one cell of mode-dependent sizes,
:func:`by_mode`):

- ``quick``: tiny data and a few steps, about a minute a notebook on a CPU; the CI smoke test,
  whose numbers are never results;
- ``laptop``: the notebook's real experiment on CIFAR-10 at 32x32 with small networks, at most
  ten minutes a notebook on two CPU cores, a few minutes on a GPU;
- ``full``: the paper-scale experiment, GPU hours; only when asked for.

``COURSE_MODE=quick|laptop|full`` chooses; ``COURSE_QUICK=1`` / ``0`` still means quick / full.
Unset, a machine with CUDA runs laptop mode (full takes hours) and any other runs quick mode.
``COURSE_DATA`` moves the data root.
"""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from helpers.threads import ensure_threads, thread_choice

MODE_ENV = "COURSE_MODE"
QUICK_ENV = "COURSE_QUICK"
MODES = ("quick", "laptop", "full")
SIZE_ENV = "COURSE_SIZE"  # "toy": laptop/full mode's code path at quick mode's sizes (CI)
DATA_ENV = "COURSE_DATA"
DEVICE_ENV = "COURSE_DEVICE"
OFFLINE_ENV = "COURSE_OFFLINE"

_REPO_ROOT = Path(__file__).resolve().parent.parent


def mode_and_reason() -> tuple[str, str]:
    """The course's mode (``"quick"``, ``"laptop"`` or ``"full"``) and why it was chosen.

    ``COURSE_MODE`` wins; else ``COURSE_QUICK`` (``"1"`` quick, ``"0"`` full); else laptop
    mode with CUDA and quick mode without. An unknown value, or the two variables
    contradicting each other, is an error that lists the valid values, not a guess.
    """
    raw_mode = os.environ.get(MODE_ENV, "").strip()
    raw_quick = os.environ.get(QUICK_ENV, "").strip()
    quick_value = {"1": "quick", "0": "full"}.get(raw_quick)
    if raw_quick and quick_value is None:
        raise ValueError(
            f"{QUICK_ENV} must be '1' (quick mode) or '0' (full mode), got {raw_quick!r}; "
            f"or use {MODE_ENV}={'|'.join(MODES)}"
        )
    if raw_mode:
        chosen = raw_mode.lower()
        if chosen not in MODES:
            raise ValueError(f"{MODE_ENV} must be one of {', '.join(MODES)}, got {raw_mode!r}")
        if quick_value is not None and quick_value != chosen:
            raise ValueError(
                f"{MODE_ENV}={raw_mode} and {QUICK_ENV}={raw_quick} ({quick_value} mode) "
                f"contradict each other: unset one of them"
            )
        return chosen, f"{MODE_ENV}={raw_mode}"
    if quick_value is not None:
        return quick_value, f"{QUICK_ENV}={raw_quick}"
    if torch.cuda.is_available():
        return "laptop", "the default with CUDA (full mode takes hours)"
    return "quick", "the default without CUDA"


def mode() -> str:
    """The course's mode: ``"quick"``, ``"laptop"`` or ``"full"`` (:func:`mode_and_reason`)."""
    return mode_and_reason()[0]


def quick_mode() -> bool:
    """Whether notebooks run their quick (smoke-test sized) variant: ``mode() == "quick"``."""
    return mode() == "quick"


def toy_size() -> bool:
    """Whether ``COURSE_SIZE=toy`` shrinks laptop or full mode to quick mode's sizes (CI)."""
    raw = os.environ.get(SIZE_ENV, "").strip()
    if raw not in ("", "toy"):
        raise ValueError(f"{SIZE_ENV} must be 'toy' or unset, got {raw!r}")
    return raw == "toy"


def by_mode(*, quick: Any, laptop: Any, full: Any) -> Any:
    """The value for the current mode: ``by_mode(quick=2, laptop=15, full=160)``.

    The one place a notebook's sizes depend on the mode, so that every mode runs the same
    code at another size. With ``COURSE_SIZE=toy`` laptop and full mode take quick mode's
    sizes: their own code path (real data, their models) at smoke-test size, which is how the
    tests keep laptop mode from rotting.
    """
    chosen = mode()
    return quick if toy_size() else {"quick": quick, "laptop": laptop, "full": full}[chosen]


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
        return (
            f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads; "
            f"{describe_cpu()})"
        )
    return str(dev)


def describe_cpu() -> str:
    """The CPU's name, its bf16 instructions and the instruction set torch's kernels use.

    e.g. ``AMD EPYC, AVX512-BF16, torch kernels AVX512``: timings depend on all three (bf16
    runs natively only with AVX512-BF16 or AMX, and ``ATEN_CPU_CAPABILITY`` can lower the
    kernels), so the banner and the results records name them.
    """
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    name = caps.get("cpu_name") or platform.processor() or platform.machine()
    labels = (("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX-BF16"))
    bf16 = ", ".join(label for key, label in labels if caps.get(key)) or "no bf16 instructions"
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip()
    onednn = f", oneDNN limited to {limit}" if limit else ""
    return f"{name}, {bf16}, torch kernels {torch.backends.cpu.get_cpu_capability()}{onednn}"


_MODE_MEANING = {
    "quick": "smoke test on tiny data: numbers are not results",
    "laptop": "real data, small networks: minutes on a CPU",
    "full": "the paper-scale experiment: GPU hours",
}


def banner(data_source: str | None = None) -> str:
    """The block every notebook prints first: mode, device, versions and data source."""
    chosen, reason = mode_and_reason()
    lines = [
        f"mode        : {chosen} ({_MODE_MEANING[chosen]})",
        f"              chosen by {reason}; switch with {MODE_ENV}={'|'.join(MODES)}"
        + (f"; {SIZE_ENV}=toy: quick mode's sizes" if os.environ.get(SIZE_ENV) else ""),
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
