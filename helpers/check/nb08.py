"""Self-checks for notebook 08 (speed and scale)."""

from __future__ import annotations

import numbers
from collections.abc import Callable

from helpers.check.core import CheckFailed, exercise, expect


def _number(answer: object, what: str) -> float:
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise CheckFailed(f"{what} should be a number, got {type(answer).__name__}")
    return float(answer)


@exercise("Batch per process")
def per_process_batch(answer: object) -> str:
    """torchrun on 4 GPUs with --batch-size 512 (the global batch): images per process and step."""
    value = _number(answer, "the batch per process")
    expect(
        value == 128,
        f"{value:g} is not it: helpers' --batch-size is the global batch, split evenly over the "
        "processes (one per GPU)",
    )
    return "512 / 4 = 128 images per GPU and step; the gradients are averaged over all 512"


@exercise("Linear scaling rule")
def scaled_lr(answer: object) -> str:
    """lr 0.1 at global batch 128, moved to global batch 1024 by the linear scaling rule."""
    value = _number(answer, "the learning rate")
    expect(
        abs(value - 0.8) < 1e-9,
        f"lr {value:g} is not it: the batch grows 8x, so the linear scaling rule multiplies lr "
        "by 8 (Goyal et al. 2017; with a warm-up)",
    )
    return "0.1 x 1024/128 = 0.8, reached after a warm-up of a few epochs"


_PICK_CASES = (
    ({"fp32": 1.0, "channels_last": 0.8, "bf16": 0.6}, 0.05, "bf16"),
    ({"fp32": 1.0, "channels_last": 0.97, "bf16": 1.3}, 0.05, "fp32"),
    ({"fp32": 1.0, "channels_last": 0.9, "bf16": 1.1}, 0.05, "channels_last"),
    ({"fp32": 1.0, "channels_last": 0.9, "bf16": 1.1}, 0.2, "fp32"),
    ({"channels_last": 0.5, "fp32": 0.6}, 0.05, "channels_last"),
)


@exercise("Pick the precision")
def pick_precision(pick: Callable) -> str:
    """``pick(seconds, margin)`` returns the label with the fewest seconds per step, unless it
    beats "fp32" by less than ``margin`` (a fraction), then "fp32"."""
    expect(callable(pick), f"pass your function itself, got {type(pick).__name__}")
    for seconds, margin, wanted in _PICK_CASES:
        got = pick(dict(seconds), margin)
        expect(
            got == wanted,
            f"pick({seconds}, margin={margin}) returned {got!r}, expected {wanted!r} "
            "(fastest wins only when faster than fp32 by more than the margin)",
        )
    return f"right on all {len(_PICK_CASES)} cases"


@exercise("Amdahl's law")
def amdahl(answer: object) -> str:
    """Convolutions take 70 % of a step and bf16 makes them 3x faster: the whole step's speed-up."""
    value = _number(answer, "the speed-up")
    wanted = 1 / (0.3 + 0.7 / 3)
    hint = (
        "the 30 % that is not convolution stays as slow as it was: new time = 0.3 + 0.7 / 3"
        if value > 2
        else "new time = 0.3 + 0.7 / 3 of the old; the speed-up is old time / new time"
    )
    expect(abs(value - wanted) < 0.01, f"a speed-up of {value:g} is not it: {hint}")
    return f"1 / (0.3 + 0.7/3) = {wanted:.3f}x: the part you did not speed up caps the gain"


@exercise("Two threads, one shared core")
def shared_core_speedup(answer: object) -> str:
    """Each operator split evenly over 2 threads; one core is free, the other gives torch half of
    its time. Speed-up of 2 threads over 1 thread on the free core (ignoring hand-off costs)."""
    value = _number(answer, "the speed-up")
    expect(
        abs(value - 1.0) < 0.01,
        f"a speed-up of {value:g} is not it: the half on the shared core runs at half speed, "
        "so it takes (T/2) / 0.5 = T, and every operator waits for its slower half",
    )
    return "1.0x at best: the slow half sets the pace, and real hand-offs make it worse than 1"
