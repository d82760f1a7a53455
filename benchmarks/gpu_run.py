"""The prepared GPU run: time-to-94 %, ``pytest -m gpu`` and the notebooks, into ``$OUT``.

Made for a bare GPU machine: a ``python3`` with torch, torchvision, timm, pytest and the
course's plotting and data packages, but without nbval, ipykernel, jupyter or grad-cam, the
project not installed, no network, and about 10 minutes in all. ``gpu_run.sh`` puts the
repository on ``PYTHONPATH`` and installs any wheels carried in ``local/wheels/``. Steps, in
order of value, each with its own time budget (skipped, with the reason recorded, when the
time left would not cover it; killed at its timeout, with what it printed recorded):

1. ``1_time_to_94``: a helpers ResNet-18 (CIFAR stem) through ``python -m helpers.train``
   options only, on 40,000 CIFAR-10 training JPEGs, validated on the held-out 10,000 after
   every epoch, for several seeds. Time-to-94 % is the training time up to the first epoch
   whose held-out accuracy is at least 94 %, without validation and without the first
   epoch's compilation and warm-up, which are reported apart (as airbench and DAWNBench do);
   mean and spread over the seeds that reached it.
2. ``2_pytest_gpu``: ``pytest -m gpu tests/``: fp16 with GradScaler, channels_last,
   ``torch.compile`` training, a checkpoint resumed on CUDA, NCCL DDP with world size 1, and
   the EMA and DeviceLoader under CUDA's sync debug mode.
3. ``3_notebooks``: every notebook under nbval in quick mode (``COURSE_QUICK=1``), each with
   its own timeout, four at a time; skipped when nbval or ipykernel is missing.
4. ``4_resnet20_he``: He et al.'s ResNet-20 recipe (182 epochs), only with ``--he-resnet20``:
   it does not fit in the same 10 minutes.

Every step writes ``<OUT>/<step>.json`` (machine, versions, command, status, seconds and its
figures) as soon as it finishes, and rewrites it after each seed or notebook, so a run killed
from outside leaves what it had; ``0_setup.json`` describes the machine and the plan. With the
shell script's log that is 6 files (the GPU machine returns at most 8). ``--dry-run`` goes
through every step at toy size on the CPU (a generated 10-class ImageFolder, one notebook,
two epochs) to test the script itself; see ``bare_env_dry_run.sh`` for doing that in an
environment like the GPU machine's.

    benchmarks/gpu_run.sh [--archive local/cifar10-train-jpeg.tar.gz | --data DIR] [--seeds 3]
    OUT=/tmp/out benchmarks/gpu_run.sh --dry-run
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The project is not installed on the GPU machine: its modules come from the repository, in
# this process (common imports helpers) and in every subprocess and notebook kernel.
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
)

import torch  # noqa: E402
from common import machine_record  # noqa: E402

# The time-to-94% recipe (one GPU). Everything is a `python -m helpers.train` option: the data
# sits on the GPU as uint8 (DeviceLoader), bf16 autocast, NHWC, torch.compile (--drop-last:
# every step has one shape, so it compiles once), label smoothing, flip TTA at validation, no
# weight decay on norm and bias (TrainConfig's default), EMA of the weights, a large batch
# with Nesterov momentum and a one-cycle schedule.
RECIPE_94 = [
    "--model", "resnet18", "--model-arg", "stem=cifar", "--image-size", "32",
    "--val-size", "10000", "--test-size", "0", "--batch-size", "512", "--drop-last",
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

# Seconds. The first seed of the 94% recipe compiles the model (Inductor) and decodes the
# 50,000 JPEGs: 90-150 s on an H200 by estimate; later seeds reuse the compile cache. The
# default budget leaves the GPU machine's 10-minute command limit room for start-up.
BUDGET_S = 540
FIRST_SEED = {"need": 150, "timeout": 240}
PYTEST_GPU = {"need": 90, "timeout": 240}
NOTEBOOK = {"need": 30, "timeout": 150}
R20 = {"need": 400, "timeout": 600}
TARGET = 0.94
STEP_FILES = ("0_setup", "1_time_to_94", "2_pytest_gpu", "3_notebooks", "4_resnet20_he")
MAX_FILES = 8  # what comes back from the GPU machine; the shell script's log is one more


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


def extract_archive(archive: Path, into: Path) -> Path:
    """Unpack a .tar.gz of ``<top>/<class>/<image>`` (e.g. ``train/airplane/0001.jpg``) and
    return the folder of class folders."""
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")  # "data": no absolute paths, links out, devices
    folder = into
    # Descend through single top folders (train/) to the one holding the class folders.
    while True:
        subfolders = [p for p in folder.iterdir() if p.is_dir()]
        if len(subfolders) != 1 or any(p.is_file() for p in subfolders[0].iterdir()):
            return folder
        folder = subfolders[0]


def missing_modules(*names: str) -> list[str]:
    """The names among ``names`` that this Python cannot find."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def import_errors(*names: str) -> list[str]:
    """'name: error' for each module among ``names`` that is missing or fails to import (a
    carried wheel whose own dependencies are missing fails only here)."""
    errors = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as err:  # ImportError, or whatever a broken package raises
            errors.append(f"{name}: {type(err).__name__}: {err}")
    return errors


class Run:
    """The time budget, the output folder and the record of every step."""

    def __init__(self, out: Path, budget_s: float, dry_run: bool) -> None:
        self.out, self.deadline, self.dry_run = out, time.monotonic() + budget_s, dry_run
        self.lock = threading.Lock()  # notebooks run in threads and save as they finish
        out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        """Seconds left in the budget."""
        return self.deadline - time.monotonic()

    def command(
        self,
        name: str,
        argv: list[str],
        need_s: float,
        timeout_s: float,
        env: dict[str, str] | None = None,
    ) -> dict:
        """Run ``argv`` if ``need_s`` seconds are left, killed after ``timeout_s`` (or at the
        end of the budget); the record says ok, failed, timeout or skipped (with why)."""
        record: dict = {"step": name, "command": " ".join(argv), "dry_run": self.dry_run}
        if self.left() < need_s:
            record.update(status="skipped", why=f"{self.left():.0f} s left, needs ~{need_s:.0f}")
            print(f"[{name}] skipped: {record['why']}", flush=True)
            return record
        timeout = max(1.0, min(timeout_s, self.left()))
        record["timeout_s"] = round(timeout)
        print(f"[{name}] {record['command']} (timeout {timeout:.0f} s)", flush=True)
        start = time.monotonic()
        try:
            proc = subprocess.run(
                argv, cwd=REPO, env={**os.environ, **(env or {})}, timeout=timeout,
                capture_output=True, text=True,
            )  # fmt: skip
            record.update(
                status="ok" if proc.returncode == 0 else "failed",
                returncode=proc.returncode,
                tail=(proc.stdout + proc.stderr)[-3000:],
            )
        except subprocess.TimeoutExpired as err:
            printed = "".join(
                s.decode(errors="replace") if isinstance(s, bytes) else s or ""
                for s in (err.stdout, err.stderr)
            )
            record.update(status="timeout", tail=printed[-3000:])
        record["seconds"] = round(time.monotonic() - start, 1)
        print(f"[{name}] {record['status']} in {record['seconds']} s", flush=True)
        return record

    def save(self, name: str, record: dict) -> Path:
        """Write ``<out>/<name>.json`` atomically (a killed run never leaves half a file)."""
        if name not in STEP_FILES:
            raise ValueError(f"{name!r} is not one of the step files {STEP_FILES}")
        record = {"machine": machine_record(), **record}
        path = self.out / f"{name}.json"
        with self.lock:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record, indent=2) + "\n")
            tmp.replace(path)
        return path

    def skip(self, name: str, why: str) -> None:
        """Record a step that does not run, and why."""
        print(f"[{name}] skipped: {why}", flush=True)
        self.save(name, {"step": name, "status": "skipped", "why": why, "dry_run": self.dry_run})


def seed_figures(result: dict, target: float) -> dict:
    """Time-to-``target`` figures of one seed, from ``python -m helpers.train --out`` JSON.

    ``compile_seconds`` is the first epoch's training time beyond the median of the others
    (compilation, cuDNN autotuning, allocator warm-up); ``time_to_target_seconds`` is the
    training time up to the first epoch at ``target`` held-out accuracy without it, and
    without validation, which ``val_seconds`` gives apart.
    """
    history, timing = result["history"], result.get("timing") or []
    train = [t["train_seconds"] for t in timing]
    val = [t["val_seconds"] for t in timing]
    accs = [r["val_acc"] for r in history]
    first = next((i for i, a in enumerate(accs) if a is not None and a >= target), None)
    compile_s = train[0] - statistics.median(train[1:]) if len(train) > 1 else None
    figures: dict = {
        "epochs": len(history),
        "val_acc": result.get("val", {}).get("acc"),
        "test_acc": result.get("test", {}).get("acc"),
        "val_acc_per_epoch": [None if a is None else round(a, 4) for a in accs],
        "train_seconds_per_epoch": [round(s, 2) for s in train],
        "val_seconds_per_epoch": [round(s, 2) for s in val],
        "train_seconds": round(sum(train), 2),
        "val_seconds": round(sum(val), 2),
        "compile_seconds": None if compile_s is None else round(compile_s, 2),
        "epochs_to_target": None if first is None else first + 1,
        "train_seconds_to_target_with_compile": None,
        "time_to_target_seconds": None,
    }
    if first is not None and len(train) > first:
        with_compile = sum(train[: first + 1])
        figures["train_seconds_to_target_with_compile"] = round(with_compile, 2)
        figures["time_to_target_seconds"] = round(with_compile - (compile_s or 0.0), 2)
    return figures


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation (None for one value), min and max."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": round(statistics.mean(values), 4),
        "sd": round(statistics.stdev(values), 4) if len(values) > 1 else None,
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def recipe(
    run: Run,
    name: str,
    argv: list[str],
    data: Path,
    test: Path | None,
    seeds: int,
    first: dict,
    reserve_s: float,
    target: float = TARGET,
) -> None:
    """Train ``argv`` for ``seeds`` seeds; save ``<name>.json`` after each one.

    The first seed needs ``first["need"]`` seconds; a later one the last seed's time again
    plus ``reserve_s`` for the steps after this one, so extra seeds never crowd them out.
    """
    argv = toy(argv) if run.dry_run else list(argv)
    argv += ["--image-folder", str(data)]
    if test is not None:
        argv += ["--test-folder", str(test), "--test"]
    records: list[dict] = []
    histories = Path(tempfile.mkdtemp(prefix=f"{name}_"))  # not $OUT: 8 files at most there
    summary: dict = {"step": name, "target": target, "dry_run": run.dry_run, "runs": records}
    need, timeout = first["need"], first["timeout"]
    for seed in range(seeds):
        out = histories / f"seed{seed}.json"
        cmd = [sys.executable, "-m", "helpers.train", *argv, "--seed", str(seed), "--out", str(out)]
        record = run.command(f"{name} seed {seed}", cmd, need, timeout)
        if record["status"] == "ok":
            record.update(seed_figures(json.loads(out.read_text()), target))
        records.append(record)
        summary.update(summarise(records))
        run.save(name, summary)
        if record["status"] != "ok":
            break  # a failed or killed seed would fail the same way again
        need = record["seconds"] * 1.1 + reserve_s
        timeout = max(record["seconds"] * 2, first["need"])
    if not records:
        summary.update(status="skipped", why="no seed")
    run.save(name, summary)
    t = summary.get("time_to_target_seconds") or {}
    if t.get("n"):
        print(f"[{name}] time to {target:.0%}: {t['mean']} s (sd {t['sd']}) over {t['n']} seed(s)")


def summarise(records: list[dict]) -> dict:
    """The step's status and the spread over seeds of what each seed measured."""
    done = [r for r in records if r["status"] == "ok"]
    reached = [r for r in done if r.get("time_to_target_seconds") is not None]
    statuses = {r["status"] for r in records}
    status = "ok" if done and statuses == {"ok"} else ("partial" if done else records[-1]["status"])
    why = {"why": records[-1]["why"]} if status == "skipped" else {}
    accs = [r["val_acc"] for r in done if r.get("val_acc") is not None]
    # Notebook 08 prints val_acc_mean, seeds_done and train_seconds_mean (all epochs' training,
    # compile included, validation not) until it shows time_to_target_seconds.
    legacy = {"val_acc_mean": statistics.mean(accs)} if accs else {}
    if done:
        legacy["train_seconds_mean"] = statistics.mean(r["train_seconds"] for r in done)
    return {
        "status": status,
        **why,
        **legacy,
        "seeds_done": len(done),
        "seeds_reaching_target": len(reached),
        "val_acc": spread([r["val_acc"] for r in done if r.get("val_acc") is not None]),
        "time_to_target_seconds": spread([r["time_to_target_seconds"] for r in reached]),
        "epochs_to_target": spread([r["epochs_to_target"] for r in reached]),
        "compile_seconds": spread([r["compile_seconds"] for r in done if r["compile_seconds"]]),
        "val_seconds": spread([r["val_seconds"] for r in done]),
    }


def step_tests(run: Run) -> None:
    """``pytest -m gpu tests/``, without pyproject's nbval options (nbval may be missing) and
    without the nbval plugin (a carried nbval that fails to import would stop pytest)."""
    cmd = [
        sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider",
        "-p", "no:nbval", "-m", "gpu", "-q", "-rs", "tests/",
    ]  # fmt: skip
    record = run.command("pytest -m gpu", cmd, PYTEST_GPU["need"], PYTEST_GPU["timeout"])
    run.save("2_pytest_gpu", record)


def step_notebooks(run: Run, parallel: int) -> None:
    """Every notebook under nbval in quick mode, each with its own timeout."""
    name = "3_notebooks"
    missing = missing_modules("nbval", "ipykernel")
    if missing:
        run.skip(
            name,
            f"{', '.join(missing)} not installed here (carry the wheels in local/wheels/: "
            "benchmarks/gpu_wheels.sh)",
        )
        return
    broken = import_errors("nbval.plugin", "ipykernel.kernelapp")
    if broken:
        run.skip(name, "carried packages do not import: " + "; ".join(broken))
        return
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if run.dry_run:
        notebooks, parallel = notebooks[:1], 1
    env = {"COURSE_QUICK": "1", "COURSE_OFFLINE": "1"}
    if parallel > 1:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    records: list[dict] = []
    summary: dict = {"step": name, "parallel": parallel, "dry_run": run.dry_run}

    def one(nb: Path) -> dict:
        # --nbval-current-env: the kernel is this Python, with this PYTHONPATH (the repo).
        cmd = [
            sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider",
            "--nbval-lax", "--nbval-current-env", "-q", str(nb.relative_to(REPO)),
        ]  # fmt: skip
        record = run.command(f"nbval {nb.name}", cmd, NOTEBOOK["need"], NOTEBOOK["timeout"], env)
        with run.lock:
            records.append(record)
            records.sort(key=lambda r: r["step"])
        counts = {s: sum(r["status"] == s for r in records) for s in ("ok", "failed")}
        summary.update(notebooks=records, **counts)
        run.save(name, summary)
        return record

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, notebooks))
    statuses = {r["status"] for r in records}
    summary["status"] = "ok" if statuses == {"ok"} else ("failed" if statuses else "skipped")
    run.save(name, summary)


def main(argv: list[str] | None = None) -> int:
    """Run the steps in order of value; returns 0 when the script itself went through."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="CIFAR-10 training JPEGs: DIR/<class>/<image>")
    source.add_argument(
        "--archive",
        type=Path,
        help="a .tar.gz of them, extracted on the machine (default: "
        "local/cifar10-train-jpeg.tar.gz when it is there; local/ is git-ignored)",
    )
    parser.add_argument("--test-folder", type=Path, help="the real test split, if you have it")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the 94%% recipe")
    parser.add_argument(
        "--budget", type=float, help=f"seconds for all steps (default {BUDGET_S}; dry run 3600)"
    )
    parser.add_argument(
        "--out", type=Path, help="results folder (default: $OUT if set, else results/gpu)"
    )
    parser.add_argument("--notebooks-parallel", type=int, default=4, help="notebooks at a time")
    parser.add_argument(
        "--he-resnet20", action="store_true", help="also He et al.'s 182-epoch ResNet-20"
    )
    parser.add_argument("--dry-run", action="store_true", help="toy size on the CPU")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.out is None:
        args.out = Path(os.environ["OUT"]) if os.environ.get("OUT") else REPO / "results" / "gpu"
    setup: dict = {"step": "setup", "dry_run": args.dry_run, "argv": sys.argv[1:]}
    default_archive = REPO / "local" / "cifar10-train-jpeg.tar.gz"
    if args.data is None and args.archive is None and default_archive.is_file():
        args.archive = default_archive
    if args.dry_run:
        tmp = Path(tempfile.mkdtemp(prefix="gpu_run_dry_"))
        args.data = make_toy_folder(tmp / "train")
        args.seeds = min(args.seeds, 2)
        os.environ["COURSE_DEVICE"] = "cpu"
        setup["data"] = f"toy ImageFolder {args.data}"
    elif args.archive is not None:
        if not args.archive.is_file():
            parser.error(f"--archive: no file {args.archive}")
        start = time.monotonic()
        args.data = extract_archive(args.archive, Path(tempfile.mkdtemp(prefix="cifar10_")))
        setup["data"] = f"{args.archive.name} extracted to {args.data}"
        setup["extract_seconds"] = round(time.monotonic() - start, 1)
    if not args.dry_run:
        if args.data is None or not args.data.is_dir():
            parser.error(
                f"--data must be a folder of class folders (got {args.data}); or copy "
                f"cifar10-train-jpeg.tar.gz to {default_archive.parent}/"
            )
        if not torch.cuda.is_available():
            parser.error("no CUDA device: use --dry-run to test the script on a CPU")
    if args.budget is None:
        args.budget = 3600 if args.dry_run else BUDGET_S
    run = Run(args.out, args.budget, args.dry_run)
    setup.update(
        budget_s=args.budget,
        missing_packages=missing_modules("nbval", "ipykernel", "pytorch_grad_cam", "timm"),
        pythonpath=os.environ["PYTHONPATH"],
        python=sys.executable,
        plan={
            "1_time_to_94": {"seeds": args.seeds, "first_seed": FIRST_SEED},
            "2_pytest_gpu": PYTEST_GPU,
            "3_notebooks": {**NOTEBOOK, "parallel": args.notebooks_parallel},
            "4_resnet20_he": R20 if args.he_resnet20 else "opt-in: --he-resnet20",
        },
        status="ok",
    )
    run.save("0_setup", setup)
    print(f"results -> {args.out}; budget {args.budget:.0f} s", flush=True)

    reserve = PYTEST_GPU["need"]  # later seeds leave pytest -m gpu its time
    data, test = args.data, args.test_folder
    steps: dict[str, Callable[[], None]] = {
        "1_time_to_94": lambda: recipe(
            run, "1_time_to_94", RECIPE_94, data, test, args.seeds, FIRST_SEED, reserve
        ),
        "2_pytest_gpu": lambda: step_tests(run),
        "3_notebooks": lambda: step_notebooks(run, args.notebooks_parallel),
        "4_resnet20_he": lambda: (
            recipe(run, "4_resnet20_he", RECIPE_R20, data, test, 1, R20, 0, target=0.9)
            if args.he_resnet20
            else run.skip("4_resnet20_he", "opt-in (--he-resnet20): 182 epochs")
        ),
    }
    for name, step in steps.items():
        try:
            step()
        except Exception:  # a broken step must not cost the later ones their turn
            print(traceback.format_exc(), flush=True)
            run.save(name, {"step": name, "status": "error", "why": traceback.format_exc()})
    setup["seconds"] = round(time.monotonic() - started, 1)
    run.save("0_setup", setup)
    print(f"done in {setup['seconds']} s; {run.left():.0f} s of the budget left; in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
