"""Command-line trainer: ``python -m helpers.train --model resnet20 --data cifar10 ...``.

Runs on one process, or on several under ``torchrun`` with DistributedDataParallel (NCCL on
CUDA, gloo on the CPU; initialised from torchrun's environment variables). ``--batch-size``
is the global batch, split evenly over the processes, so a recipe means the same on any
number of GPUs. See ``python -m helpers.train --help`` for examples.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

EPILOG = """\
examples:
  # He et al. 2016 ResNet-20 on CIFAR-10 (64k iterations = 182 epochs at batch 128)
  python -m helpers.train --model resnet20 --data cifar10 --epochs 182 --batch-size 128 \\
      --lr 0.1 --schedule step --checkpoint-dir runs/resnet20 --out runs/resnet20.json

  # a smoke test on the offline digits set, on the CPU, in seconds
  python -m helpers.train --model resnet20 --data digits --image-size 16 --train-size 512 \\
      --epochs 2 --batch-size 64 --no-progress

  # the "improved ResNet50" tricks: cosine schedule, warm-up, label smoothing, fp16
  python -m helpers.train --model resnet50 --image-folder ~/my_images --image-size 224 \\
      --epochs 30 --batch-size 256 --schedule cosine --warmup-epochs 1 \\
      --label-smoothing 0.1 --amp fp16 --channels-last

  # the same on 4 GPUs of one machine (the global batch stays 256)
  torchrun --nproc_per_node=4 -m helpers.train --model resnet50 --image-folder ~/my_images \\
      --image-size 224 --epochs 30 --batch-size 256 --schedule cosine --amp fp16 --sync-bn

  # interrupted (Ctrl-C, kill, a lost Colab session)? run the same command again: it
  # resumes from --checkpoint-dir and ends with the weights of an uninterrupted run.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.train",
        description="Train a ResNet of helpers.models on a course data set or your own\n"
        "ImageFolder, on one process or on several under torchrun (DistributedDataParallel).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_argument_group("model and data")
    what.add_argument(
        "--model",
        required=True,
        metavar="NAME",
        help="a helpers.models name (resnet20, resnet56, plain20, resnet50, ...) or "
        "'package.module:function' returning an nn.Module (called with num_classes=, "
        "in_chans=)",
    )
    what.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword option for the model, repeatable (e.g. shortcut=B, dropout=0.2)",
    )
    source = what.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data",
        help="cifar10, cifar100, gtsrb (downloaded by torchvision), digits, shapes (offline)",
    )
    source.add_argument(
        "--image-folder", type=Path, metavar="PATH", help="your own images: PATH/<class>/<image>"
    )
    what.add_argument(
        "--data-root",
        type=Path,
        help="where data sets are downloaded (default: COURSE_DATA or data/)",
    )
    what.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    what.add_argument(
        "--image-size",
        type=int,
        metavar="N",
        help="resize images to this size (default: the set's)",
    )
    what.add_argument(
        "--train-size", type=int, metavar="N", help="keep this many training images (quick runs)"
    )
    what.add_argument(
        "--val-size",
        type=_count_or_fraction,
        metavar="N",
        help="validation images held out of train (count or fraction)",
    )
    what.add_argument(
        "--test-size", type=_count_or_fraction, help="test images (count or fraction; 0 for none)"
    )
    what.add_argument(
        "--data-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the train/val/test split (default: 0)",
    )
    what.add_argument("--no-augment", action="store_true", help="no pad + crop + flip augmentation")

    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, required=True, metavar="N")
    opt.add_argument(
        "--batch-size",
        type=int,
        default=128,
        help="global batch size, split over processes (default: 128)",
    )
    opt.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    opt.add_argument("--lr", type=float, help="learning rate (default: 0.1 SGD, 1e-3 AdamW)")
    opt.add_argument("--momentum", type=float, default=0.9)
    opt.add_argument("--nesterov", action="store_true")
    opt.add_argument("--weight-decay", type=float, help="default: 1e-4 SGD, 0.01 AdamW")
    opt.add_argument(
        "--decay-norm-and-bias",
        action="store_true",
        help="weight decay on BatchNorm and bias parameters too",
    )
    opt.add_argument("--schedule", choices=["step", "cosine", "onecycle", "none"], default="step")
    opt.add_argument(
        "--milestones",
        type=_number,
        nargs="+",
        default=[0.5, 0.75],
        metavar="M",
        help="step schedule: fractions of training (0.5 0.75, the default) or epochs (91 136)",
    )
    opt.add_argument("--gamma", type=float, default=0.1, help="step schedule factor (default: 0.1)")
    opt.add_argument("--warmup-epochs", type=float, default=0.0, help="linear warm-up (default: 0)")
    opt.add_argument("--label-smoothing", type=float, default=0.0)
    opt.add_argument("--grad-clip", type=float, help="clip the gradient norm to this value")

    run = parser.add_argument_group("running")
    run.add_argument(
        "--amp",
        choices=["off", "fp16", "bf16"],
        default="off",
        help="mixed precision (fp16: CUDA only)",
    )
    run.add_argument("--channels-last", action="store_true", help="NHWC memory layout")
    run.add_argument(
        "--sync-bn", action="store_true", help="SyncBatchNorm under torchrun (CUDA only)"
    )
    run.add_argument(
        "--device", metavar="DEV", help="cpu, cuda, cuda:1 ... (default: CUDA if available)"
    )
    run.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seeds the weights, data order and augmentation",
    )
    run.add_argument(
        "--checkpoint-dir", type=Path, metavar="DIR", help="save every epoch here; resume from it"
    )
    run.add_argument("--test", action="store_true", help="evaluate on the test split at the end")
    run.add_argument(
        "--no-progress", action="store_true", help="one line per epoch instead of progress bars"
    )
    run.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the history and final metrics to this JSON file",
    )
    return parser


def _number(text: str) -> int | float:
    """'0.5' -> 0.5 (a fraction), '91' -> 91 (an epoch)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _count_or_fraction(text: str) -> int | float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _model_kwargs(items: Sequence[str]) -> dict[str, Any]:
    """['shortcut=B', 'dropout=0.2'] -> {'shortcut': 'B', 'dropout': 0.2}."""
    kwargs = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-arg must look like KEY=VALUE, got {item!r}")
        try:
            kwargs[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            kwargs[key] = raw  # a bare word such as B or silu
    return kwargs


def build_model(name: str, num_classes: int, in_chans: int, kwargs: dict[str, Any]) -> nn.Module:
    """A helpers.models model by name, or a 'module:function' factory."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(
                f"--model {name!r}: cannot import {attr} from {module_name} ({err})"
            ) from err
        model = factory(num_classes=num_classes, in_chans=in_chans, **kwargs)
        if not isinstance(model, nn.Module):
            raise TypeError(f"--model {name!r} returned {type(model).__name__}, not an nn.Module")
        return model
    from helpers import models

    return models.create(name, num_classes=num_classes, in_chans=in_chans, **kwargs)


def load_data(args: argparse.Namespace):  # -> helpers.data.DataSplits
    from helpers import data

    options: dict[str, Any] = {"seed": args.data_seed, "train_size": args.train_size}
    for key in ("image_size", "val_size", "test_size"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.image_folder is not None:
        return data.load_image_folder(args.image_folder, **options)
    return data.load(args.data, root=args.data_root, download=not args.no_download, **options)


def init_distributed(device: str | None) -> tuple[int, int, torch.device]:
    """(world size, rank, device): from torchrun's environment when it launched us."""
    from helpers.train.evaluation import resolve_device

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 1, 0, resolve_device(device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)  # one GPU per process
        torch.cuda.set_device(dev)
    dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return world_size, rank, dev


def main(argv: Sequence[str] | None = None) -> int:
    """Run the trainer; returns the exit status (0 on success)."""
    from helpers.train import CheckpointError, NonFiniteLossError

    # Errors whose message says all there is to say (bad arguments, a missing data set, a
    # mismatched checkpoint, a diverged run) are printed as one line, without a traceback.
    user_errors = (ValueError, TypeError, OSError, CheckpointError, NonFiniteLossError)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt as err:
        print(f"\n{err or 'interrupted'}", file=sys.stderr)
        return 130
    except user_errors as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _run(args: argparse.Namespace) -> int:
    from helpers import config, data
    from helpers.train import evaluate, fit

    world_size, rank, dev = init_distributed(args.device)
    is_main = rank == 0
    say = print if is_main else (lambda *a, **k: None)
    if args.batch_size % world_size:
        raise ValueError(
            f"--batch-size {args.batch_size} (the global batch) must be divisible by the "
            f"number of processes ({world_size})"
        )

    if world_size > 1 and not is_main:
        dist.barrier()  # let rank 0 alone download the data set, if it must
    splits = load_data(args)
    if world_size > 1 and is_main:
        dist.barrier()
    config.seed_everything(args.seed)  # the weights: the same on every process
    model = build_model(
        args.model, splits.num_classes, splits.in_chans, _model_kwargs(args.model_arg)
    )
    # Every process trains on its slice of the same global batch. The last, short global
    # batch is dropped under DDP, where it could leave a process with no images at all.
    (train_loader, *_) = data.make_loaders(
        splits,
        batch_size=args.batch_size // world_size,
        device=dev,
        augment=not args.no_augment,
        seed=args.seed,
        drop_last=world_size > 1,
        num_replicas=world_size,
        rank=rank,
    )
    # Validation and test run whole on rank 0 (fit validates there), from unsharded loaders.
    _, val_loader, test_loader = data.make_loaders(
        splits, batch_size=args.batch_size, device=dev, augment=False, seed=args.seed
    )

    n_params = sum(p.numel() for p in model.parameters())
    say(f"data   : {splits.source}")
    say(f"model  : {args.model} ({n_params:,} parameters), {splits.num_classes} classes")
    say(
        f"run    : {args.epochs} epochs x {len(train_loader)} steps, global batch "
        f"{args.batch_size} on {world_size} process(es), device {dev}"
    )

    def log_epoch(record: dict[str, Any]) -> None:
        if is_main and args.no_progress:
            print(
                f"epoch {record['epoch']:3d}/{args.epochs}  train loss {record['train_loss']:.4f} "
                f"acc {record['train_acc']:.4f}  val loss {record['val_loss']:.4f} "
                f"acc {record['val_acc']:.4f}  lr {record['lr']:.2e}  {record['time']:.1f}s",
                flush=True,
            )

    history = fit(
        model,
        train_loader,
        val_loader,
        epochs=args.epochs,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        nesterov=args.nesterov,
        weight_decay=args.weight_decay,
        decay_norm_and_bias=args.decay_norm_and_bias,
        schedule=None if args.schedule == "none" else args.schedule,
        milestones=args.milestones,
        gamma=args.gamma,
        warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing,
        amp=None if args.amp == "off" else args.amp,
        channels_last=args.channels_last,
        grad_clip=args.grad_clip,
        sync_bn=args.sync_bn,
        device=dev,
        seed=args.seed,
        checkpoint_dir=args.checkpoint_dir,
        progress=is_main and not args.no_progress,
        on_epoch_end=log_epoch,
    )
    if not is_main:
        return 0
    results: dict[str, Any] = {"history": history.records}
    if val_loader is not None:
        results["val"] = evaluate(model, val_loader, device=dev, amp=_amp(args))
        print(_metrics_line("val", results["val"]))
    if args.test:
        if test_loader is None:
            raise ValueError("--test: this data set has no test split (see --test-size)")
        results["test"] = evaluate(model, test_loader, device=dev, amp=_amp(args))
        print(_metrics_line("test", results["test"]))
    if args.out is not None:
        results.update(
            args={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            data_source=splits.source,
            world_size=world_size,
            device=str(dev),
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(_json_safe(results), indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def _amp(args: argparse.Namespace) -> str | None:
    return None if args.amp == "off" else args.amp


def _metrics_line(name: str, metrics: dict[str, float]) -> str:
    loss, acc, top5 = metrics["loss"], metrics["acc"], metrics["top5"]
    return f"{name:5s}: loss {loss:.4f}  acc {acc:.4f}  top5 {top5:.4f}"


def _json_safe(value: Any) -> Any:
    """NaN (no validation set) becomes null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
