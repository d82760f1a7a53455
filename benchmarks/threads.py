"""Training under load: a ResNet-20 step with 1 against 2 torch threads, with and without a
competing CPU job.

torch's intra-op threads split every operation and then wait for each other. When another
process holds one of the cores, the thread that lands behind it makes its siblings wait, so two
threads can be slower than one. ``competing_load`` starts such a job (a single-threaded
matrix-multiply loop, as another training run or a browser tab might be) for the duration of a
measurement; ``--busy`` measures with it, after the same measurement without it.

    python benchmarks/threads.py [--busy] [--repeats 5] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import torch
from common import machine_lines
from precision import make_step, race_with_threads, with_threads

from helpers import models

LOAD_SCRIPT = (
    "import torch\n"
    "torch.set_num_threads(1)\n"
    "a = torch.randn(256, 256)\n"
    "while True:\n"
    "    a = torch.tanh(a @ a)\n"
)


@contextlib.contextmanager
def competing_load(processes: int = 1) -> Iterator[None]:
    """Run ``processes`` single-threaded CPU-bound jobs while the block runs; stop them after."""
    jobs = [subprocess.Popen([sys.executable, "-c", LOAD_SCRIPT]) for _ in range(processes)]
    try:
        time.sleep(2.0)  # let them start (import torch) and reach full speed
        yield
    finally:
        for job in jobs:
            job.terminate()
        for job in jobs:
            job.wait(timeout=10)


def measure(
    batch_size: int = 128, repeats: int = 5, warmup: int = 1, threads: Sequence[int] = (1, 2)
) -> dict[int, float]:
    """Median seconds per resnet20 fp32 step for each thread count, interleaved."""
    torch.manual_seed(0)
    model = models.resnet20(num_classes=10)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (batch_size,), generator=g)
    contenders = {n: with_threads(n, make_step(model, x, y, None, False)) for n in threads}
    return race_with_threads(contenders, repeats, warmup)


def auto_threads() -> str:
    """The thread count the course chooses right now (as a notebook's banner would), in a fresh
    process."""
    code = (
        "import helpers.threads, torch; helpers.threads.ensure_threads(); "
        "print(torch.get_num_threads())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_THREADS", "OMP_NUM_THREADS")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", action="store_true", help="also measure under a competing job")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    print("\n".join(machine_lines()))
    phases = {"as is": contextlib.nullcontext}
    if args.busy:
        phases["+1 competing job"] = competing_load
    for phase, context in phases.items():
        with context():
            chosen = auto_threads()
            t = measure(args.batch_size, args.repeats)
        rates = ", ".join(f"{n} thread(s) {args.batch_size / s:.0f} img/s" for n, s in t.items())
        print(
            f"{phase:18s}: {rates}; 2 threads / 1 thread speed: {t[1] / t[2]:.2f}x; "
            f"the course chose {chosen} thread(s)"
        )


if __name__ == "__main__":
    main()
