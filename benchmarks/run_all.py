"""Every benchmark of the course in one run, as one markdown table of side-by-side ratios.

Each ratio compares contenders measured in the same run, interleaved (median of repeats), so it
holds on a busy machine where the absolute numbers do not. A ratio is the contender's speed
over the baseline's: above 1 the contender is faster. Rows:

- loader: helpers' DeviceLoader against torchvision's PIL DataLoader (benchmarks/loader.py);
- train step: helpers' models against torchvision / a hand-written ResNet-20, and fit()
  against a bare loop (benchmarks/train_step.py);
- precision: fp32, channels_last, bf16 autocast and both, with 1 and 2 torch threads, for
  ResNet-20 and ResNet-50 at 32x32, batch 128 (benchmarks/precision.py), and what
  ``helpers.train.precision.choose_cpu_precision`` picks for ResNet-20.

Longer measurements are options: ``--busy`` (1 against 2 threads while a competing CPU job
runs, benchmarks/threads.py), ``--compile`` (torch.compile, about a minute to compile),
``--course`` (every notebook under nbval in quick mode, seconds each). ``--smoke`` runs
everything at toy size in seconds (for the tests).

    python benchmarks/run_all.py [--busy] [--course] [--compile] [--json results/cpu/run_all.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules

import loader
import precision
import threads
import train_step
from common import machine_lines, machine_record

from helpers import models
from helpers.train.precision import choose_cpu_precision

REPO = Path(__file__).resolve().parent.parent

# (images, loader repeats, step repeats, batch size) of a normal run and of a smoke run
SIZES = {"normal": (10_000, 5, 3, 128), "smoke": (256, 1, 1, 4)}


class Table:
    """Rows of (benchmark, contender, baseline, ratio, detail)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def add(self, bench: str, contender: str, baseline: str, ratio: float, detail: str) -> None:
        self.rows.append(
            {"benchmark": bench, "contender": contender, "baseline": baseline,
             "ratio": round(ratio, 3), "detail": detail}
        )  # fmt: skip

    def markdown(self) -> str:
        lines = [
            "| benchmark | contender | baseline | speed ratio | detail |",
            "|---|---|---|---:|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r['benchmark']} | {r['contender']} | {r['baseline']} | "
                f"{r['ratio']:.2f}x | {r['detail']} |"
            )
        return "\n".join(lines)


def run_loader(table: Table, images: int, repeats: int) -> None:
    source, n, rates = loader.measure(images, repeats, 128, "cpu")
    med = {name: statistics.median(r) for name, r in rates.items()}
    fast = med[loader.DEVICE]
    for base in (loader.PIL, loader.PERSISTENT):
        table.add(
            f"loader, {n} {source} images, batch 128",
            "DeviceLoader",
            base.strip(),
            fast / med[base],
            f"{fast:,.0f} vs {med[base]:,.0f} img/s",
        )


def run_train_step(table: Table, repeats: int) -> None:
    fit_repeats = 1 if repeats == 1 else None
    for what, shape, t, ref in train_step.measure(torch.device("cpu"), repeats, 1, fit_repeats):
        table.add(
            f"train step {shape}",
            f"helpers {what}",
            ref,
            t["ref"] / t["helpers"],
            f"{t['helpers'] * 1e3:.0f} vs {t['ref'] * 1e3:.0f} ms",
        )


def run_precision(table: Table, batch: int, repeats: int, compile_model: bool) -> None:
    for name in ("resnet20", "resnet50"):
        t = precision.measure(
            name, batch_size=batch, threads=(1, 2), repeats=repeats, compile_model=compile_model
        )
        for (n, label), seconds in t.items():
            base = t[(n, "fp32")]
            if label != "fp32":
                table.add(
                    f"{name} step, 32x32, batch {batch}, {n} thread(s)",
                    label,
                    "fp32",
                    base / seconds,
                    f"{batch / seconds:,.0f} vs {batch / base:,.0f} img/s",
                )
        one, two = t[(1, "fp32")], t[(2, "fp32")]
        table.add(
            f"{name} step, 32x32, batch {batch}, fp32",
            "2 threads",
            "1 thread",
            one / two,
            f"{batch / two:,.0f} vs {batch / one:,.0f} img/s",
        )


def run_choice(table: Table, batch: int, steps: int) -> None:
    torch.manual_seed(0)
    choice = choose_cpu_precision(models.resnet20(num_classes=10), batch_size=batch, steps=steps)
    table.add(
        f"choose_cpu_precision(resnet20), batch {batch}, 1 thread",
        choice.label,
        "fp32",
        choice.seconds["fp32"] / choice.seconds[choice.label],
        choice.reason,
    )


def run_busy(table: Table, batch: int, repeats: int) -> None:
    for phase in ("as is", "+1 competing job"):
        context = threads.competing_load if phase != "as is" else _nothing
        with context():
            t = threads.measure(batch, repeats)
        table.add(
            f"resnet20 step, batch {batch}, load {phase}",
            "2 threads",
            "1 thread",
            t[1] / t[2],
            f"{batch / t[2]:,.0f} vs {batch / t[1]:,.0f} img/s",
        )


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def run_course(notebooks: Sequence[Path]) -> list[tuple[str, float, int]]:
    """(notebook, seconds, pytest exit status) of each notebook under nbval, quick mode."""
    env = {**os.environ, "COURSE_QUICK": "1", "COURSE_OFFLINE": "1"}
    results = []
    for nb in notebooks:
        start = time.perf_counter()
        status = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", str(nb)], cwd=REPO, env=env,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        results.append((nb.name, time.perf_counter() - start, status))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="toy sizes, seconds (for tests)")
    parser.add_argument("--busy", action="store_true", help="1 vs 2 threads under a competing job")
    parser.add_argument("--compile", action="store_true", help="add torch.compile (slow)")
    parser.add_argument("--course", action="store_true", help="time every notebook (minutes)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows here")
    parser.add_argument("--batch-size", type=int, help="of the step benchmarks (default 128)")
    parser.add_argument("--repeats", type=int, help="timed steps per contender (default 3)")
    args = parser.parse_args(argv)
    images, loader_repeats, step_repeats, batch = SIZES["smoke" if args.smoke else "normal"]
    batch = args.batch_size or batch
    step_repeats = args.repeats or step_repeats
    start = time.perf_counter()
    head = machine_lines()
    table = Table()
    # One torch thread unless a benchmark sets its own: on a shared machine a second thread
    # waits for the busiest core (benchmarks/threads.py measures this).
    torch.set_num_threads(1)
    stages = [
        ("loader", lambda: run_loader(table, images, loader_repeats)),
        ("train step", lambda: run_train_step(table, step_repeats)),
        ("precision", lambda: run_precision(table, batch, step_repeats, args.compile)),
        ("choose_cpu_precision", lambda: run_choice(table, batch, step_repeats)),
    ]
    if args.busy:
        stages.append(("busy", lambda: run_busy(table, batch, step_repeats + 2)))
    for name, stage in stages:
        begin, done = time.perf_counter(), len(table.rows)
        stage()
        print(f"[{name}: {time.perf_counter() - begin:.0f} s]", file=sys.stderr, flush=True)
        for row in table.rows[done:]:  # progress, in case a long run is stopped
            print("  ", " | ".join(map(str, row.values())), file=sys.stderr, flush=True)
    course = []
    if args.course:
        course = run_course(sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    seconds = time.perf_counter() - start
    print("\n".join(f"- {line}" for line in head))
    print(f"- end: {machine_lines()[-1]}; {seconds:.0f} s in all")
    print("- ratio = contender speed / baseline speed (above 1: faster), measured side by side\n")
    print(table.markdown())
    if course:
        print("\n| notebook (nbval, COURSE_QUICK=1) | seconds | passed |\n|---|---:|---|")
        for name, s, status in course:
            print(f"| {name} | {s:.0f} | {'yes' if status == 0 else 'NO'} |")
        print(f"| all | {sum(s for _, s, _ in course):.0f} | |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "machine": machine_record(),
            "seconds": seconds,
            "rows": table.rows,
            "course": [{"notebook": n, "seconds": s, "status": c} for n, s, c in course],
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
