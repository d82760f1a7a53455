"""Where and in what precision a model runs: the device, autocast, GradScaler, channels-last."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from helpers import config
from helpers.train.config import AMP_MODES

__all__ = [
    "autocast",
    "check_amp",
    "grad_scaler",
    "model_device",
    "resolve_device",
    "to_layout",
]


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a torch.device (``helpers.config.parse_device``); ``config.device()``
    when None."""
    return config.device() if device is None else config.parse_device(device)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters (or buffers) live; the default device if it has none."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return config.device()


def check_amp(amp: Any, dev: torch.device) -> str | None:
    """Validate a mixed-precision mode for ``dev``: "fp16" (CUDA only), "bf16" or None."""
    if amp in (None, "off"):
        return None
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be 'fp16', 'bf16' or None, got {amp!r}")
    if amp == "fp16" and dev.type != "cuda":
        raise ValueError(
            f"amp='fp16' needs a CUDA device (fp16 training relies on a GradScaler), but the "
            f"device is {dev}; on a CPU use amp='bf16' or amp=None"
        )
    if amp == "bf16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"amp='bf16' is not supported by {torch.cuda.get_device_name(dev)}")
    return amp


def autocast(dev: torch.device, amp: str | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for the mode, or a no-op context without mixed precision."""
    if amp is None:
        return contextlib.nullcontext()
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast(device_type=dev.type, dtype=dtype)


def grad_scaler(amp: str | None) -> torch.amp.GradScaler | None:
    """fp16 gradients would underflow: a GradScaler scales the loss up, unscales the gradients
    before the update and skips steps whose gradients overflowed. None for other modes."""
    return torch.amp.GradScaler("cuda") if amp == "fp16" else None


def to_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``x`` in channels-last (NHWC) memory layout if asked and 4-d; else unchanged."""
    if channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x
