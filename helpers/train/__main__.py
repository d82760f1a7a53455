"""Command-line trainer: ``python -m helpers.train --model resnet20 --data cifar10 ...``.

Runs on one process, or on several under ``torchrun`` with DistributedDataParallel (NCCL on
CUDA, gloo on the CPU; initialised from torchrun's environment variables). ``--batch-size``
is the global batch, split evenly over the processes, so a recipe means the same on any
number of GPUs. See ``python -m helpers.train --help`` for examples.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import json
import math
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch.distributed as dist
from torch import nn

from helpers import data, models, settings
from helpers.data import FolderSubset
from helpers.threads import ensure_threads
from helpers.train import (
    CheckpointError,
    NonFiniteLossError,
    checkpoint,
    distributed,
    evaluate,
    fit,
    format_record,
)
from helpers.train.options import add_config_arguments, config_from_args, number
from helpers.validate import check_int

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

  # interrupted (Ctrl-C, SIGTERM from timeout/SLURM, kill, a lost Colab session)? run the
  # same command again: it resumes from --checkpoint-dir and ends with the weights of an
  # uninterrupted run (a command with other model, data or settings is refused).
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
        "in_chans=). The second form imports that module and runs that function: it runs "
        "code you name, with your permissions, so name only code you trust",
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
        "--test-folder",
        type=Path,
        metavar="PATH",
        help="with --image-folder: a separate test set, PATH/<class>/<image> with the same "
        "classes (e.g. CIFAR-style train/ and test/ folders); else test images are held out",
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
        help="resize images to this size (default: the set's own; 224 for --image-folder)",
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
    what.add_argument(
        "--drop-last",
        action="store_true",
        help="drop each epoch's last, short training batch: every step has the same shape, so "
        "--compile compiles once (always on under torchrun)",
    )
    what.add_argument(
        "--batch-size",
        type=int,
        default=128,
        help="global batch size, split over processes (default: 128)",
    )
    # Every TrainConfig field, generated (the CLI seeds the weights and data order by default).
    add_config_arguments(parser, seed=0)
    out = parser.add_argument_group("results")
    out.add_argument("--test", action="store_true", help="evaluate on the test split at the end")
    out.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the history and final metrics to this JSON file",
    )
    return parser


def _count_or_fraction(text: str) -> int | float:
    value = number(text)
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


def model_factory(name: str) -> Callable[..., nn.Module]:
    """The function that builds ``--model``: a helpers.models builder, or the imported
    'module:function' (ValueError for an unknown name, before any data is loaded)."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(
                f"--model {name!r}: cannot import {attr} from {module_name} ({err})"
            ) from err

    if name not in models.list_models():
        raise ValueError(f"unknown model {name!r}; known models: {models.list_models()}")
    return functools.partial(models.create, name)


def build_model(name: str, num_classes: int, in_chans: int, kwargs: dict[str, Any]) -> nn.Module:
    """A helpers.models model by name, or a 'module:function' factory."""
    model = model_factory(name)(num_classes=num_classes, in_chans=in_chans, **kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"--model {name!r} returned {type(model).__name__}, not an nn.Module")
    return model


def check_before_work(args: argparse.Namespace, cfg: Any) -> None:
    """The checks that need no data, made before any is loaded: a mistake in an argument
    must not cost the decoding of every image, an epoch or the whole training."""
    check_int("--batch-size", args.batch_size, 1)
    for name in ("image_size", "train_size"):
        if getattr(args, name) is not None:
            check_int("--" + name.replace("_", "-"), getattr(args, name), 1)
    if args.test and args.test_folder is None and args.test_size == 0:
        raise ValueError(
            "--test with --test-size 0: there would be no test split to evaluate. Drop --test, "
            "or hold out test images (--test-size N or a fraction, or --test-folder)"
        )
    model_factory(args.model)
    _model_kwargs(args.model_arg)
    if cfg.checkpoint_dir is not None:
        checkpoint.prepare_dir(cfg.checkpoint_dir)
    if args.out is not None:
        _check_writable_file(args.out, "--out")


def _check_writable_file(path: Path, option: str) -> None:
    """``path`` can be created (its folder is made now) and is not a folder."""
    if path.is_dir():
        raise IsADirectoryError(f"{option} {str(path)!r} is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        raise type(err)(
            f"{option} {str(path)!r} cannot be written ({err.strerror or err}); choose a file "
            "in a folder you can write to"
        ) from err


def load_data(args: argparse.Namespace):  # -> helpers.data.DataSplits

    options: dict[str, Any] = {"seed": args.data_seed, "train_size": args.train_size}
    for key in ("image_size", "val_size", "test_size"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.image_folder is not None:
        splits = data.load_image_folder(args.image_folder, test_path=args.test_folder, **options)
        if args.image_size is None:
            _note_upscaling(args.image_folder, splits)
        return splits
    if args.test_folder is not None:
        raise ValueError("--test-folder goes with --image-folder, not --data")
    return data.load(args.data, root=args.data_root, download=not args.no_download, **options)


def _note_upscaling(folder: str, splits: Any) -> None:
    """Say so when small images (e.g. CIFAR's 32x32) are upscaled to the default size.

    ``splits`` is what :func:`helpers.data.load_image_folder` returned; its first training
    image, from the folder scan it already made, stands for the others.
    """
    train, size = splits.train, splits.image_size
    if not isinstance(train, FolderSubset) or not len(train):  # held as tensors: small already
        return
    path = train.folder.samples[train.indices[0]][0]
    try:
        width, height = train.folder.loader(path).size
    except OSError:  # unreadable: reading the split reports it with the file's name
        return
    own = max(width, height)
    if own * 2 <= size:
        print(
            f"note: the images in {folder} are {width}x{height} (the first one); without "
            f"--image-size they are upscaled to {size}x{size}. Pass --image-size {own} to "
            "train at their own size.",
            file=sys.stderr,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the trainer; returns the exit status (0 on success)."""
    # Errors whose message says all there is to say (bad arguments, a missing data set, a
    # mismatched checkpoint, a diverged run) are printed as one line, without a traceback.
    user_errors = (ValueError, TypeError, OSError, CheckpointError, NonFiniteLossError)
    parser = build_parser()
    args = parser.parse_args(argv)
    ensure_threads()  # the CLI is where the course starts: one thread per idle core
    try:
        return _run(args)
    except KeyboardInterrupt as err:
        print(f"\n{err or 'interrupted'}", file=sys.stderr)
        return 128 + getattr(err, "signum", signal.SIGINT)  # the shell's code: 130, 143
    except user_errors as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _run(args: argparse.Namespace) -> int:

    cfg = config_from_args(args)  # checks every setting before any work
    if cfg.seed is None:
        raise ValueError("--seed none: the command line needs a seed (all processes must agree)")
    check_before_work(args, cfg)
    world_size, rank, dev = distributed.init_from_env(cfg.device)
    is_main = rank == 0
    say = distributed.printer(is_main)
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
    settings.seed_everything(cfg.seed)  # the weights: the same on every process
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
        seed=cfg.seed,
        drop_last=args.drop_last or world_size > 1,
        num_replicas=world_size,
        rank=rank,
    )
    # Validation and test run whole on rank 0 (fit validates there), from unsharded loaders.
    _, val_loader, test_loader = data.make_loaders(
        splits, batch_size=args.batch_size, device=dev, augment=False, seed=cfg.seed
    )
    if args.test and test_loader is None:  # now, not after the training
        raise ValueError("--test: this data set has no test split (see --test-size)")

    n_params = sum(p.numel() for p in model.parameters())
    say(f"data   : {splits.source}")
    say(f"model  : {args.model} ({n_params:,} parameters), {splits.num_classes} classes")
    say(
        f"run    : {cfg.epochs} epochs x {len(train_loader)} steps, global batch "
        f"{args.batch_size} on {world_size} process(es), device {dev}"
    )

    def log_epoch(record: dict[str, Any]) -> None:
        if is_main and not cfg.progress:
            print(format_record(record, cfg.epochs), flush=True)

    progress = cfg.progress and is_main
    history = fit(
        model,
        train_loader,
        val_loader,
        cfg,
        device=str(dev),
        progress=progress,
        on_epoch_end=log_epoch,
        identity=run_identity(args, splits),
    )
    if not is_main:
        return 0
    results: dict[str, Any] = {"history": history.records, "timing": history.timing}
    metrics = {"device": dev, "amp": cfg.amp, "channels_last": cfg.channels_last, "tta": cfg.tta}
    if val_loader is not None:
        results["val"] = evaluate(model, val_loader, **metrics)
        print(_metrics_line("val", results["val"]))
    if args.test:
        results["test"] = evaluate(model, test_loader, **metrics)
        print(_metrics_line("test", results["test"]))
    if args.out is not None:
        results.update(
            args={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            config=cfg.asdict(),
            data_source=splits.source,
            world_size=world_size,
            device=str(dev),
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(_json_safe(results), indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def run_identity(args: argparse.Namespace, splits: Any) -> dict[str, Any]:
    """What a resume of this command must agree on besides the training settings: the model
    and its options, the data and its split, the image size and the augmentation."""
    sizes = [0 if s is None else len(s) for s in (splits.train, splits.val, splits.test)]
    return {
        "model": args.model,
        "model_args": _model_kwargs(args.model_arg),
        "data": args.data if args.data is not None else "image folder",
        "classes": list(splits.classes),
        "data_seed": args.data_seed,
        "split_sizes": sizes,
        "image_size": splits.image_size,
        "augment": not args.no_augment,
    }


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
