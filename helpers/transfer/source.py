"""A source model the course pretrains itself, offline: what stands in for ImageNet weights.

The source task is half of the classes of a dataset the course has offline (by default the
digits 0-4 of scikit-learn's handwritten digits); the target task is the other half. It is
*not* ImageNet: one small network, a few hundred images, a few seconds of training. But it
lets every transfer experiment run in CI and on a laptop without a network.

The trained weights are saved with their metadata (architecture, classes, image size, mean,
std, source accuracy) in one file, written atomically, read with ``weights_only=True``, and
cached (by default under ``data/transfer/``, which git ignores): a second run reuses them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from helpers import models as course_models
from helpers import settings
from helpers.data import make_loaders
from helpers.train import evaluate, fit
from helpers.transfer.loading import WeightsUnavailableError, read_weights_file

__all__ = ["save_source_model", "source_model"]

FORMAT = 1  # bump when the file layout changes: older cache files are then retrained


def save_source_model(path: str | os.PathLike, model: nn.Module, meta: dict[str, Any]) -> Path:
    """Write ``{"state_dict", "meta"}`` to ``path`` atomically (temporary file, then rename).

    ``meta`` must hold plain Python values (str, int, float, bool, lists, dicts) so that the
    file loads with ``torch.load(..., weights_only=True)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"state_dict": state, "meta": dict(meta, format=FORMAT)}, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a cache need not be
        os.replace(tmp, path)  # atomic: a reader sees the old file or the new one, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _cache_name(arch: str, model_kwargs: dict[str, Any], classes: list[str], **rest: Any) -> str:
    options = "_".join(f"{k}{v}" for k, v in sorted({**model_kwargs, **rest}.items()))
    return f"source_{arch}_{options}_classes{''.join(classes)}.pt".replace(" ", "")


def _cached(path: Path, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The metadata of a usable cache file, or None (missing, unreadable, or other settings)."""
    if not path.is_file():
        return None
    try:
        _, meta = read_weights_file(path)
    except (WeightsUnavailableError, RuntimeError) as err:
        print(f"cached source model {path} is unreadable ({err}); training it again")
        return None
    if meta.get("format") != FORMAT or any(meta.get(k) != v for k, v in wanted.items()):
        return None
    return meta


def source_model(
    splits,
    *,
    arch: str = "resnet18",
    model_kwargs: dict[str, Any] | None = None,
    epochs: int = 8,
    lr: float = 0.05,
    batch_size: int = 64,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    retrain: bool = False,
    verbose: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Train (or reuse from the cache) a source model on ``splits``; returns (file, metadata).

    ``splits`` is the source task (a :class:`helpers.data.DataSplits` of small images, e.g.
    ``class_subset(digits, ["0", ..., "4"])``). The model is ``arch`` built with
    ``model_kwargs`` (keep it small: ``{"width": 0.25}``), trained with SGD and a cosine
    schedule, evaluated on the test split. The file goes to ``cache_dir`` (default
    ``<data root>/transfer``) under a name made of the settings, and is reused when it exists
    with the same settings (``retrain=True`` forces training). Load it with
    ``load_pretrained(arch, path, num_classes, **meta["model_kwargs"])``.
    """

    model_kwargs = dict(model_kwargs or {})
    cache_dir = Path(cache_dir) if cache_dir is not None else settings.data_root() / "transfer"
    wanted = {
        "arch": arch,
        "model_kwargs": model_kwargs,
        "categories": list(splits.classes),
        "image_size": splits.image_size,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        "task": splits.source,
    }
    path = cache_dir / _cache_name(
        arch, model_kwargs, list(splits.classes), e=epochs, s=seed, px=splits.image_size
    )
    meta = None if retrain else _cached(path, wanted)
    if meta is not None:
        if verbose:
            print(f"source model: reusing {path} (source test accuracy {meta['source_acc']:.3f})")
        return path, meta

    settings.seed_everything(seed)
    model = course_models.create(
        arch, num_classes=splits.num_classes, in_chans=splits.in_chans, **model_kwargs
    )
    train, _, test = make_loaders(splits, batch_size=batch_size, seed=seed)
    fit(model, train, None, epochs=epochs, lr=lr, schedule="cosine", progress=False, seed=seed)
    acc = evaluate(model, test)["acc"]
    meta = dict(
        wanted,
        mean=list(splits.mean),
        std=list(splits.std),
        source_acc=acc,
        description=f"{arch} {model_kwargs} pretrained on {splits.name or splits.source}",
        torch=str(torch.__version__),
    )
    save_source_model(path, model, meta)
    if verbose:
        print(f"source model: trained {arch} for {epochs} epochs, source test accuracy {acc:.3f}")
        print(f"saved to {path}")
    return path, meta
