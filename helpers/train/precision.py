"""Where and in what precision a model runs: the device, autocast, GradScaler, channels-last."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from helpers import config
from helpers.timing import autocast_for, median_step_times, sgd_step
from helpers.train.config import AMP_MODES
from helpers.validate import check_int

__all__ = [
    "PrecisionChoice",
    "autocast",
    "check_amp",
    "choose_cpu_precision",
    "choose_precision",
    "cpu_bf16_support",
    "grad_scaler",
    "model_device",
    "resolve_device",
    "time_training_steps",
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
    return autocast_for(dev, amp)


def grad_scaler(amp: str | None) -> torch.amp.GradScaler | None:
    """fp16 gradients would underflow: a GradScaler scales the loss up, unscales the gradients
    before the update and skips steps whose gradients overflowed. None for other modes."""
    return torch.amp.GradScaler("cuda") if amp == "fp16" else None


def to_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``x`` in channels-last (NHWC) memory layout if asked and 4-d; else unchanged."""
    if channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


# ---- choosing the CPU precision by the hardware and a short measurement


@dataclass(frozen=True)
class PrecisionChoice:
    """What :func:`choose_cpu_precision` picked, and the evidence.

    ``amp`` and ``channels_last`` go straight into ``fit`` / TrainConfig; ``seconds`` holds the
    median seconds per training step of every candidate measured (keys such as
    ``"fp32"``, ``"bf16+channels_last"``); ``reason`` says why in one sentence.
    """

    amp: str | None
    channels_last: bool
    seconds: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    @property
    def label(self) -> str:
        """The candidate's name, e.g. ``"fp32"`` or ``"bf16+channels_last"``."""
        return _label(self.amp, self.channels_last)


def _label(amp: str | None, channels_last: bool) -> str:
    return (amp or "fp32") + ("+channels_last" if channels_last else "")


def cpu_bf16_support() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16); without either,
    torch emulates bf16 by conversions, which is rarely faster than fp32."""
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def time_training_steps(
    model: nn.Module,
    candidates: Sequence[tuple[str | None, bool]],
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
) -> dict[str, float]:
    """Median seconds per SGD training step of each ``(amp, channels_last)`` candidate.

    Each candidate trains its own copy of ``model`` on the fixed batch x: (B, C, H, W),
    y: (B,). One untimed warm-up step each, then ``steps`` timed steps, interleaved in
    alternating order so that load from other processes hits all candidates alike.
    """
    runs: dict[str, Callable[[], None]] = {}
    for amp, channels_last in candidates:
        net = copy.deepcopy(model).train()
        if channels_last:
            net.to(memory_format=torch.channels_last)
        runs[_label(amp, channels_last)] = sgd_step(net, to_layout(x, channels_last), y, amp)
    return median_step_times(runs, x.device, repeats=steps, warmup=1)


def choose_cpu_precision(
    model: nn.Module,
    input_size: Sequence[int] = (3, 32, 32),
    *,
    batch_size: int = 64,
    steps: int = 3,
    margin: float = 0.05,
) -> PrecisionChoice:
    """The fastest CPU training precision and memory format for ``model``, measured here.

    bf16 autocast is a candidate only where the CPU has AVX512-BF16 or AMX-BF16
    (:func:`cpu_bf16_support`); fp32 and channels_last always are. Each candidate trains a copy
    of ``model`` (the model itself is not changed) for ``steps`` timed steps on a random batch
    of ``batch_size`` inputs of shape ``input_size`` (C, H, W). fp32 in the default layout
    wins unless another candidate is faster by more than ``margin`` (0.05: 5 %), so noise
    alone does not switch precision. Takes a few seconds for a ResNet-20 at 32x32.
    """
    check_int("batch_size", batch_size, 1)
    check_int("steps", steps, 1)
    if len(input_size) != 3 or not all(isinstance(n, int) and n > 0 for n in input_size):
        raise ValueError(f"input_size must be (C, H, W) positive ints, got {tuple(input_size)!r}")
    if model_device(model).type != "cpu":
        raise ValueError(
            f"choose_cpu_precision measures on the CPU; the model is on {model_device(model)}"
        )
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, *input_size, generator=generator)
    with torch.no_grad():
        num_classes = copy.deepcopy(model).eval()(x[:1]).shape[1]
    y = torch.randint(0, num_classes, (batch_size,), generator=generator)
    bf16 = cpu_bf16_support()
    candidates = [(None, False), (None, True)]
    if bf16:
        candidates += [("bf16", False), ("bf16", True)]
    seconds = time_training_steps(model, candidates, x, y, steps)
    best_amp, best_cl = min(candidates, key=lambda c: seconds[_label(*c)])
    base = seconds["fp32"]
    best = seconds[_label(best_amp, best_cl)]
    hardware = "this CPU has native bf16" if bf16 else "no native bf16 on this CPU: not tried"
    if best < base * (1 - margin):
        reason = f"{_label(best_amp, best_cl)} was {base / best:.2f}x faster than fp32 ({hardware})"
        return PrecisionChoice(best_amp, best_cl, seconds, reason)
    reason = f"nothing beat fp32 by more than {margin:.0%} ({hardware})"
    return PrecisionChoice(None, False, seconds, reason)


def choose_precision(
    model: nn.Module,
    input_size: Sequence[int],
    device: torch.device | str | None = None,
    **measure: Any,
) -> PrecisionChoice:
    """The training precision the notebooks use on ``device``: fp16 on CUDA, measured on a CPU.

    On a CUDA device: fp16 autocast (``fit`` adds its GradScaler) with channels_last, which
    tensor cores run fastest, without measuring. On a CPU: :func:`choose_cpu_precision` for
    ``model`` on inputs of shape ``input_size`` (C, H, W), with ``measure`` (batch_size, steps,
    margin) passed on; ``model`` stays on the CPU and unchanged. Elsewhere (e.g. MPS): fp32.
    """
    dev = resolve_device(device)
    if dev.type == "cuda":
        return PrecisionChoice("fp16", True, reason="CUDA: fp16 autocast and channels_last")
    if dev.type == "cpu":
        return choose_cpu_precision(model, input_size, **measure)
    return PrecisionChoice(None, False, reason=f"{dev.type}: fp32 (nothing measured)")
