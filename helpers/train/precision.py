"""Where and in what precision a model runs: the device, autocast, GradScaler, channels-last."""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from helpers import settings
from helpers.timing import Contender, autocast_for, training_step_times
from helpers.train.config import AMP_MODES
from helpers.validate import check_int

__all__ = [
    "PrecisionChoice",
    "autocast",
    "bf16_hardware",
    "check_amp",
    "choose_cpu_precision",
    "choose_precision",
    "grad_scaler",
    "model_device",
    "precision_label",
    "resolve_device",
    "to_layout",
]


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a torch.device (``helpers.settings.parse_device``); ``settings.device()``
    when None."""
    return settings.device() if device is None else settings.parse_device(device)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters (or buffers) live; the default device if it has none."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return settings.device()


def check_amp(amp: Any, dev: torch.device) -> str | None:
    """Validate a mixed-precision mode for ``dev``: "fp16" (CUDA only), "bf16" or None."""
    if amp in (None, "off"):
        return None
    if amp == "auto":
        raise ValueError(
            "amp='auto' is resolved by fit (helpers.train.precision.choose_precision); here "
            "give the precision itself: 'fp16', 'bf16' or None"
        )
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
        return precision_label(self.amp, self.channels_last)


def precision_label(amp: str | None, channels_last: bool) -> str:
    """A precision's name: ``"fp32"``, ``"bf16"``, ``"fp32+channels_last"`` ..."""
    return (amp or "fp32") + ("+channels_last" if channels_last else "")


def bf16_hardware() -> dict[str, bool | str]:
    """What this machine offers bf16: the CPU's instructions, what torch may use, and CUDA.

    ``avx512_bf16``: vector instructions that multiply bf16 pairs into fp32 (AVX512-BF16);
    ``amx_bf16``: Intel's AMX tile units, bf16 matrix multiply (Sapphire Rapids and later);
    both read from ``torch.cpu.get_capabilities()``. ``aten_capability``: the instruction set
    torch's own kernels dispatch to (``ATEN_CPU_CAPABILITY`` can lower it);
    ``onednn_max_isa``: the limit set on oneDNN's convolutions (``ONEDNN_MAX_CPU_ISA``, "ALL"
    when unset). ``native_cpu``: the CPU has AVX512-BF16 or AMX and neither limit forbids
    them. Without that, torch emulates bf16 by conversions, which is rarely faster than fp32
    and can be many times slower (14x for a ResNet-20 step on an AVX2-only CPU).
    """
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    avx512_bf16, amx_bf16 = bool(caps.get("avx512_bf16")), bool(caps.get("amx_bf16"))
    aten = torch.backends.cpu.get_cpu_capability()
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").strip().upper() or "ALL"
    onednn_allows_bf16 = onednn == "ALL" or any(
        isa in onednn for isa in ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AMX", "AVX10")
    )
    return {
        "cpu": str(caps.get("cpu_name", "unknown")),
        "avx512_bf16": avx512_bf16,
        "amx_bf16": amx_bf16,
        "aten_capability": aten,
        "onednn_max_isa": onednn,
        "native_cpu": (avx512_bf16 or amx_bf16)
        and aten.startswith("AVX512")
        and onednn_allows_bf16,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
    }


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
    (:func:`bf16_hardware`); fp32 and channels_last always are. Each candidate trains a copy
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
    bf16 = bool(bf16_hardware()["native_cpu"])
    candidates = [(None, False), (None, True)]
    if bf16:
        candidates += [("bf16", False), ("bf16", True)]
    contenders = {
        precision_label(amp, cl): Contender(copy.deepcopy(model), amp, cl) for amp, cl in candidates
    }
    seconds = training_step_times(contenders, x, y, repeats=steps)
    best_amp, best_cl = min(candidates, key=lambda c: seconds[precision_label(*c)])
    base = seconds["fp32"]
    best = seconds[precision_label(best_amp, best_cl)]
    hardware = "this CPU has native bf16" if bf16 else "no native bf16 on this CPU: not tried"
    if best < base * (1 - margin):
        best_label = precision_label(best_amp, best_cl)
        reason = f"{best_label} was {base / best:.2f}x faster than fp32 ({hardware})"
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
