"""Training-step throughput on the CPU: fp32, channels_last, bf16 autocast and both; 1 vs 2 threads.

A step is forward + cross-entropy + backward + SGD (momentum 0.9) on a fixed random batch.
Every (threads, precision) contender trains its own copy of the same model; all contenders of
one model are interleaved in every repeat (alternating order), and the median is reported, so
load from other processes hits them alike. bf16 is measured only where the CPU has native
bf16 (AVX512-BF16 or AMX-BF16): elsewhere torch emulates it and it is not a real option.
``--compile`` adds torch.compile (the fastest variant compiled), which costs compile time
(about a minute on 2 cores) before the first step.

    python benchmarks/precision.py [--models resnet20 resnet50] [--batch-size 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable, Mapping, Sequence

import torch
from common import machine_lines, race
from torch import nn

from helpers import models
from helpers.timing import sgd_step
from helpers.train.precision import bf16_hardware

PRECISIONS = (("fp32", None, False), ("channels_last", None, True))
BF16 = (("bf16", "bf16", False), ("bf16+channels_last", "bf16", True))


def precisions() -> tuple[tuple[str, str | None, bool], ...]:
    """(label, amp, channels_last) of every variant this CPU can run natively."""
    return PRECISIONS + (BF16 if bf16_hardware()["native_cpu"] else ())


def make_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: str | None, channels_last: bool
) -> Callable[[], None]:
    """One SGD step of its own copy of ``model`` on x: (B, C, H, W), y: (B,)."""
    net = copy.deepcopy(model).train()
    if channels_last:
        net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return sgd_step(net, x, y, amp)


def with_threads(threads: int, fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        torch.set_num_threads(threads)
        fn()

    return run


def race_with_threads(contenders: Mapping, repeats: int, warmup: int) -> dict:
    """``race`` over contenders wrapped by ``with_threads``, then the caller's thread count back."""
    old = torch.get_num_threads()
    try:
        return race(contenders, repeats, warmup)
    finally:
        torch.set_num_threads(old)


def measure(
    model_name: str,
    *,
    batch_size: int = 128,
    image_size: int = 32,
    threads: Sequence[int] = (2,),
    repeats: int = 3,
    warmup: int = 1,
    compile_model: bool = False,
) -> dict[tuple[int, str], float]:
    """Median seconds per step, keyed by (threads, variant label)."""
    torch.manual_seed(0)
    model = models.create(model_name, num_classes=10)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, image_size, image_size, generator=g)
    y = torch.randint(0, 10, (batch_size,), generator=g)
    contenders = {}
    for n in threads:
        for label, amp, channels_last in precisions():
            contenders[(n, label)] = with_threads(n, make_step(model, x, y, amp, channels_last))
    if compile_model:
        label, amp, channels_last = precisions()[-1]
        compiled = torch.compile(copy.deepcopy(model))
        start = time.perf_counter()
        step = with_threads(max(threads), make_step(compiled, x, y, amp, channels_last))
        step()  # compiles forward and backward
        print(f"torch.compile ({label}): {time.perf_counter() - start:.0f} s to compile")
        contenders[(max(threads), f"compiled {label}")] = step
    return race_with_threads(contenders, repeats, warmup)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet50"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="add torch.compile (slow)")
    args = parser.parse_args(argv)
    print("\n".join(machine_lines()))
    for name in args.models:
        t = measure(
            name,
            batch_size=args.batch_size,
            image_size=args.image_size,
            threads=args.threads,
            repeats=args.repeats,
            compile_model=args.compile,
        )
        base = t[(max(args.threads), "fp32")]
        for (n, label), seconds in t.items():
            rate = args.batch_size / seconds
            print(f"{name:9s} {n} thr {label:28s} {rate:8.0f} img/s  {base / seconds:5.2f}x")


if __name__ == "__main__":
    main()
