"""Mixed precision, measured: training-step time and activation memory, fp32 against autocast.

``torch.autocast`` runs convolutions and matrix products in a 16-bit type (bf16 on a CPU,
fp16 or bf16 on a GPU) and keeps the weights, the optimiser and the reductions in fp32.
Whether that is faster depends on the hardware (does it multiply 16-bit numbers natively?),
the model and the tensor sizes (is the time spent in big matrix products, or in overheads and
casts?). So measure it where you run, side by side::

    race = step_times({"fp32": None, "bf16": "bf16"}, make_model, x, y)   # seconds per step
    saved_activation_bytes(model, x, amp="bf16")   # bytes kept for the backward pass

Timings alternate between the contenders in every repeat, so load from other processes slows
both alike, and the median is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from helpers.timing import autocast_for, median_step_times, sgd_step

__all__ = ["autocast_for", "bf16_hardware", "saved_activation_bytes", "step_times"]


def bf16_hardware() -> dict[str, bool | str]:
    """What this CPU offers bf16 (``torch.cpu.get_capabilities()``) and the CUDA device, if any.

    ``avx512_bf16``: vector instructions that multiply bf16 pairs into fp32 (AVX512-BF16);
    ``amx_bf16``: Intel's AMX tile units, bf16 matrix multiply (Sapphire Rapids and later).
    Without either, bf16 arithmetic is emulated by conversions and gains little or nothing.
    """
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    info: dict[str, bool | str] = {
        "cpu": str(caps.get("cpu_name", "unknown")),
        "avx512_bf16": bool(caps.get("avx512_bf16", False)),
        "amx_bf16": bool(caps.get("amx_bf16", False)),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
    }
    return info


def step_times(
    contenders: Mapping[str, str | None],
    make_model: Callable[[], nn.Module],
    x: Tensor,
    y: Tensor,
    *,
    repeats: int = 5,
    warmup: int = 1,
) -> dict[str, float]:
    """Median seconds per training step for each ``{label: amp}`` (amp: None, "bf16", "fp16").

    Each contender trains its own copy of ``make_model()`` (same initial weights) on the fixed
    batch x: (B, C, H, W), y: (B,) on x's device: forward, cross-entropy, backward, SGD step.
    Steps alternate between contenders, in alternating order, ``repeats`` times after
    ``warmup`` untimed steps each.
    """
    if not contenders:
        raise ValueError("contenders must name at least one {label: amp} pair")
    base = make_model().to(x.device)
    steps = {}
    for label, amp in contenders.items():
        model = make_model().to(x.device)
        model.load_state_dict(base.state_dict())
        steps[label] = sgd_step(model.train(), x, y, amp, lr=0.01)
    return median_step_times(steps, x.device, repeats=repeats, warmup=warmup)


def saved_activation_bytes(model: nn.Module, x: Tensor, amp: str | None = None) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of one forward on x.

    x: (B, C, H, W). This is the activation memory of training, the part mixed precision
    shrinks; it does not depend on the device's allocator, so it is the same on a CPU and a
    GPU. Tensors saved twice (the same storage) are counted once; parameters are not counted,
    but the 16-bit copies of the weights that autocast makes for its convolutions are.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast_for(x.device, amp):
        model(x)
    return sum(seen.values())
