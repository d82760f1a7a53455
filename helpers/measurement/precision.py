"""Mixed precision, measured: training-step time and activation memory, fp32 against autocast.

``torch.autocast`` runs convolutions and matrix products in a 16-bit type (bf16 on a CPU,
fp16 or bf16 on a GPU) and keeps the weights, the optimiser and the reductions in fp32.
Whether that is faster depends on the hardware (does it multiply 16-bit numbers natively?),
the model and the tensor sizes (is the time spent in big matrix products, or in overheads and
casts?). So measure it where you run, side by side::

    race = training_step_times(                              # seconds per step (helpers.timing)
        {"fp32": make_model(), "bf16": Contender(make_model(), amp="bf16")}, x, y
    )
    saved_activation_bytes(model, x, amp="bf16")   # bytes kept for the backward pass
    precision_table({"resnet20, batch 64": (make_model, 64)}, "bf16")   # both, as a table

Timings alternate between the contenders in every repeat, so load from other processes slows
both alike, and the median is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import torch
from torch import Tensor, nn

from helpers.timing import Contender, autocast_for, training_step_times
from helpers.validate import check_int

__all__ = ["precision_table", "saved_activation_bytes"]


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


def precision_table(
    bench: Mapping[str, tuple[Callable[[], nn.Module], int]],
    amp: str,
    *,
    device: torch.device | str = "cpu",
    repeats: int = 5,
    image_size: int = 32,
    num_classes: int = 10,
) -> pd.DataFrame:
    """fp32 against ``amp`` autocast, per model: median ms per training step and saved MB.

    bench: ``{name: (model builder, batch size)}``. Each model trains on one random batch
    x: (B, 3, image_size, image_size), y: (B,) in [0, num_classes), drawn after
    ``torch.manual_seed(0)`` on ``device``; ``training_step_times`` races fp32 against ``amp``
    (``repeats`` timed steps each) and :func:`saved_activation_bytes` measures a fresh model.
    One row per model, indexed by name: ``fp32 ms/step``, ``<amp> ms/step``,
    ``speed-up <amp>/fp32`` (fp32 time divided by the 16-bit time: above 1 is faster) and
    ``saved activations fp32 (MB)``, ``saved activations <amp> (MB)`` (1 MB = 1e6 bytes).
    """
    if not isinstance(bench, Mapping) or not bench:
        raise ValueError("bench must be a non-empty dict {name: (model builder, batch size)}")
    if amp not in ("bf16", "fp16"):
        raise ValueError(f"amp must be the 16-bit type to compare, 'bf16' or 'fp16', got {amp!r}")
    device = torch.device(device)
    autocast_for(device, amp)  # raises ValueError for fp16 without a CUDA device
    check_int("repeats", repeats, 1)
    check_int("image_size", image_size, 1)
    check_int("num_classes", num_classes, 2)
    for name, entry in bench.items():
        if not (isinstance(entry, tuple) and len(entry) == 2 and callable(entry[0])):
            raise ValueError(f"bench[{name!r}] must be a (model builder, batch size) pair")
        check_int(f"the batch size of {name!r}", entry[1], 1)
    rows = []
    for name, (make, batch) in bench.items():
        torch.manual_seed(0)
        x = torch.randn(batch, 3, image_size, image_size, device=device)
        y = torch.randint(0, num_classes, (batch,), device=device)
        fp32_model = make().to(device)
        amp_model = make().to(device)
        amp_model.load_state_dict(fp32_model.state_dict())  # same start, different precision
        t = training_step_times(
            {"fp32": fp32_model, amp: Contender(amp_model, amp=amp)}, x, y, repeats=repeats
        )
        net = make().to(device)
        memory = {dtype: saved_activation_bytes(net, x, dtype) for dtype in (None, amp)}
        rows.append(
            {
                "model": name,
                "fp32 ms/step": 1e3 * t["fp32"],
                f"{amp} ms/step": 1e3 * t[amp],
                f"speed-up {amp}/fp32": t["fp32"] / t[amp],
                "saved activations fp32 (MB)": memory[None] / 1e6,
                f"saved activations {amp} (MB)": memory[amp] / 1e6,
            }
        )
    return pd.DataFrame(rows).set_index("model")
