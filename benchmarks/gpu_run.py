"""The prepared GPU run: tests, every notebook, and the time-to-94% recipe, into results/gpu/.

Steps, in order of value, each skipped (and recorded as skipped) when the time budget left
would not cover it:

1. ``pytest -m gpu tests/``: fp16 with GradScaler, channels_last, compile, a checkpoint
   resumed on CUDA, NCCL DDP where there is more than one GPU;
2. every notebook under nbval in quick mode (``COURSE_QUICK=1``; full mode needs downloads);
3. the time-to-94% recipe: a helpers ResNet-18 with the CIFAR stem on 40,000 of the CIFAR-10
   training JPEGs, scored on the other 10,000 (or on ``--test-folder``), through
   ``python -m helpers.train`` options only, for several seeds;
4. ResNet-20 with He et al.'s recipe, if time is left (its 182 epochs may need a run of its own).

Each step writes results/gpu/<step>.json: device, versions, the command, its exit status,
seconds, and the step's figures. ``--dry-run`` goes through every step at toy size on the CPU
(a generated 10-class ImageFolder, one notebook, two epochs), to test the script itself.

    benchmarks/gpu_run.sh --data /data/cifar10/train [--test-folder DIR] [--seeds 3]
    benchmarks/gpu_run.sh --dry-run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from common import machine_record

REPO = Path(__file__).resolve().parent.parent

# The time-to-94% recipe (one GPU). Everything is a `python -m helpers.train` option: the data
# sits on the GPU as uint8 (DeviceLoader), bf16 autocast, NHWC, torch.compile, label smoothing,
# flip TTA at validation, no weight decay on norm and bias (TrainConfig's default), EMA of the
# weights, a large batch with Nesterov momentum and a one-cycle schedule.
RECIPE_94 = [
    "--model", "resnet18", "--model-arg", "stem=cifar", "--image-size", "32",
    "--val-size", "10000", "--test-size", "0", "--batch-size", "512",
    "--epochs", "18", "--optimizer", "sgd", "--nesterov", "--lr", "0.4",
    "--weight-decay", "5e-4", "--schedule", "onecycle", "--label-smoothing", "0.2",
    "--ema-decay", "0.99", "--tta", "--amp", "bf16", "--channels-last", "--compile",
    "--no-progress",
]  # fmt: skip
# He et al. 2016, CIFAR-10 ResNet-20: SGD 0.1, momentum 0.9, wd 1e-4, batch 128, 64k
# iterations (182 epochs), lr / 10 at 32k and 48k iterations (epochs 91 and 136); 45k/5k split.
RECIPE_R20 = [
    "--model", "resnet20", "--image-size", "32", "--val-size", "5000", "--test-size", "0",
    "--batch-size", "128", "--epochs", "182", "--lr", "0.1", "--weight-decay", "1e-4",
    "--schedule", "step", "--milestones", "91", "136", "--decay-norm-and-bias",
    "--no-progress",
]  # fmt: skip
# What --dry-run replaces, to go through the same steps at toy size on the CPU.
TOY = {"--epochs": "2", "--batch-size": "16", "--val-size": "20", "--milestones": None}
TOY_MODEL = {"resnet18": ["--model-arg", "width=0.25"]}


def toy(argv: list[str]) -> list[str]:
    """The recipe at toy size: 2 epochs, batch 16, 20 validation images, a narrow model."""
    out, i = [], 0
    while i < len(argv):
        key = argv[i]
        if key in TOY:
            value = TOY[key]
            i += 3 if key == "--milestones" else 2
            if value is not None:
                out += [key, value]
            continue
        out.append(key)
        if key == "--schedule" and argv[i + 1] == "step":
            out += ["cosine"]
            i += 2
            continue
        i += 1
    model = argv[argv.index("--model") + 1]
    return out + TOY_MODEL.get(model, [])


def make_toy_folder(root: Path, classes: int = 10, per_class: int = 12) -> Path:
    """A generated ImageFolder of 32x32 JPEGs: a colour per class plus noise."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True, exist_ok=True)
        base = torch.rand(3, 1, 1, generator=g) * 200
        for i in range(per_class):
            pixels = (base + torch.rand(3, 32, 32, generator=g) * 55).clamp(0, 255).byte()
            Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(folder / f"{i}.jpg")
    return root


class Run:
    """The budget, the output folder and the record of every step."""

    def __init__(self, out: Path, budget_s: float, dry_run: bool) -> None:
        self.out, self.deadline, self.dry_run = out, time.monotonic() + budget_s, dry_run
        out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def command(self, name: str, argv: list[str], need_s: float, env: dict | None = None) -> dict:
        """Run ``argv`` if ``need_s`` seconds are left (killed at the deadline); record it."""
        record: dict = {"step": name, "command": " ".join(argv), "dry_run": self.dry_run}
        if self.left() < need_s:
            record.update(status="skipped", why=f"{self.left():.0f} s left, needs ~{need_s:.0f}")
            print(f"[{name}] skipped: {record['why']}", flush=True)
            return record
        print(f"[{name}] {record['command']}", flush=True)
        start = time.monotonic()
        try:
            proc = subprocess.run(
                argv, cwd=REPO, env={**os.environ, **(env or {})}, timeout=max(self.left(), 1),
                capture_output=True, text=True,
            )  # fmt: skip
            record.update(status=proc.returncode, tail=(proc.stdout + proc.stderr)[-3000:])
        except subprocess.TimeoutExpired as err:
            out = err.stdout.decode() if isinstance(err.stdout, bytes) else err.stdout or ""
            record.update(status="timeout", tail=out[-3000:])
        record["seconds"] = round(time.monotonic() - start, 1)
        print(f"[{name}] status {record['status']} in {record['seconds']} s", flush=True)
        return record

    def save(self, name: str, record: dict) -> Path:
        record = {"machine": machine_record(), **record}
        path = self.out / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(path)  # atomic: a killed run never leaves half a file
        return path


def step_tests(run: Run) -> None:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:randomly", "tests/"]
    run.save("1_pytest_gpu", run.command("pytest -m gpu", cmd, 20))


def step_notebooks(run: Run) -> None:
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if run.dry_run:
        notebooks = notebooks[:1]
    env = {"COURSE_QUICK": "1", "COURSE_OFFLINE": "1"}
    if not run.dry_run:
        env["OMP_NUM_THREADS"] = "4"  # 4 notebooks x 4 threads on the GPU machine's 16 cores
    # The GPU machine has CPU cores to spare: four notebooks at a time share the GPU.
    with ThreadPoolExecutor(max_workers=1 if run.dry_run else 4) as pool:
        records = list(
            pool.map(
                lambda nb: run.command(
                    f"nbval {nb.name}",
                    [sys.executable, "-m", "pytest", "-q", str(nb.relative_to(REPO))],
                    60,
                    env,
                ),
                notebooks,
            )
        )
    run.save("2_notebooks", {"notebooks": records, "parallel": 1 if run.dry_run else 4})


def recipe(run: Run, name: str, argv: list[str], data: Path, test: Path | None, seeds: int,
           need_s: float) -> None:  # fmt: skip
    argv = toy(argv) if run.dry_run else list(argv)
    argv += ["--image-folder", str(data)]
    if test is not None:
        argv += ["--test-folder", str(test), "--test"]
    records = []
    for seed in range(seeds):
        out = run.out / f"{name}_seed{seed}.history.json"
        cmd = [sys.executable, "-m", "helpers.train", *argv, "--seed", str(seed), "--out", str(out)]
        record = run.command(f"{name} seed {seed}", cmd, need_s)
        if record["status"] == 0:
            result = json.loads(out.read_text())
            history = result["history"]
            record.update(
                val_acc=result["val"]["acc"],
                test_acc=result.get("test", {}).get("acc"),
                train_seconds=round(sum(r["time"] for r in history), 1),
                first_epoch_seconds=round(history[0]["time"], 1),
                epochs=len(history),
                reached_94=[r["epoch"] for r in history if r["val_acc"] >= 0.94][:1],
            )
        records.append(record)
    done = [r for r in records if r["status"] == 0]
    summary: dict = {"runs": records, "seeds_done": len(done)}
    if done:
        accs = [r["val_acc"] for r in done]
        secs = [r["train_seconds"] for r in done]
        summary.update(
            val_acc_mean=statistics.mean(accs),
            val_acc_sd=statistics.stdev(accs) if len(accs) > 1 else None,
            train_seconds_mean=statistics.mean(secs),
        )
        print(f"[{name}] val acc {summary['val_acc_mean']:.4f} over {len(done)} seed(s), "
              f"{summary['train_seconds_mean']:.1f} s of training (incl. any compile)")  # fmt: skip
    run.save(name, summary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="CIFAR-10 training JPEGs: DIR/<class>/<image>")
    parser.add_argument("--test-folder", type=Path, help="the real test split, if you have it")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the 94%% recipe")
    parser.add_argument(
        "--budget", type=float, help="seconds for all steps (default 470; --dry-run: 3600)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu")
    parser.add_argument("--dry-run", action="store_true", help="toy size on the CPU")
    args = parser.parse_args()
    if args.dry_run:
        tmp = Path(tempfile.mkdtemp(prefix="gpu_run_dry_"))
        args.data = make_toy_folder(tmp / "train")
        args.out = tmp / "results"
        args.seeds = min(args.seeds, 2)
        os.environ["COURSE_DEVICE"] = "cpu"
    elif args.data is None or not args.data.is_dir():
        parser.error(f"--data must be a folder of class folders, got {args.data}")
    elif not torch.cuda.is_available():
        parser.error("no CUDA device: use --dry-run to test the script on a CPU")
    if args.budget is None:
        args.budget = 3600 if args.dry_run else 470
    run = Run(args.out, args.budget, args.dry_run)
    print(f"results -> {args.out}; budget {args.budget:.0f} s", flush=True)
    step_tests(run)
    step_notebooks(run)
    recipe(run, "3_resnet18_94", RECIPE_94, args.data, args.test_folder, args.seeds, 40)
    recipe(run, "4_resnet20_he", RECIPE_R20, args.data, args.test_folder, 1, 300)
    print(f"done; {run.left():.0f} s of the budget left; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
