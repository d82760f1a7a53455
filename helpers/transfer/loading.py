"""Pretrained weights into the course's models: torchvision's ImageNet weights, or a saved file.

    model = load_pretrained("resnet50", "IMAGENET1K_V2", num_classes=10)   # new 10-class fc
    model = load_pretrained("cbam_resnet50", num_classes=10)   # torchvision's resnet50 backbone
    model = load_pretrained("resnet18", "runs/source.pt", stem="cifar", width=0.25)

Nothing loads silently in part. Every tensor of the weights must find a slot of the same name and
shape, and every slot of the model must be filled, with two exceptions that are reported by
name as newly initialised: the head ``fc``, when a new one was asked for (``num_classes``
differs from the weights', or the model's head has another design, as TA-ResNet50's), and
attention modules (``se``) that the source network did not have. Anything else is a
:class:`WeightsMismatchError` with a diff of the missing, unexpected and mismatched keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.transforms import v2

from helpers import models as course_models
from helpers import settings
from helpers.validate import check_int

__all__ = [
    "LoadReport",
    "WeightsMismatchError",
    "WeightsUnavailableError",
    "load_pretrained",
    "load_weights",
    "pretrained_meta",
    "read_weights_file",
    "torchvision_weights",
]

HEAD = "fc"
ATTENTION = "se"  # the attribute name of every attention module inside a block
# Course models whose backbone is a torchvision ResNet: the extra modules start new.
BACKBONE_OF = {
    "resnet18": "resnet18",
    "resnet34": "resnet34",
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnet152": "resnet152",
    "se_resnet50": "resnet50",
    "cbam_resnet50": "resnet50",
    "ta_resnet50": "resnet50",
}
_SHOWN = 12  # keys listed per kind in a mismatch message before "... and N more"


class WeightsUnavailableError(FileNotFoundError):
    """The weights are not on disk and cannot be downloaded (offline, or the download failed)."""


class WeightsMismatchError(RuntimeError):
    """A state dict does not fit the model: the message lists the differing keys with shapes."""


@dataclass
class LoadReport:
    """What a load did: tensors copied, and the modules that start from a fresh initialisation."""

    source: str
    loaded: int
    new_head: bool = False
    new_modules: list[str] = field(default_factory=list)
    reason: str = ""

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded} tensors from {self.source}"]
        if self.new_head:
            lines.append(f"newly initialised head: {HEAD} ({self.reason})")
        attention = [m for m in self.new_modules if m != HEAD]
        if attention:
            shown = ", ".join(attention[:6]) + (" ..." if len(attention) > 6 else "")
            lines.append(
                f"newly initialised attention modules ({len(attention)}, not in the source "
                f"network): {shown}"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- weights sources


def _check_arch(name: str) -> str:
    if name not in BACKBONE_OF:
        raise ValueError(
            f"no pretrained weights for {name!r}: torchvision has ImageNet weights for "
            f"{sorted(set(BACKBONE_OF.values()))}, and "
            f"{sorted(k for k in BACKBONE_OF if '_' in k)} "
            "load the resnet50 backbone"
        )
    return BACKBONE_OF[name]


def torchvision_weights(name: str, weights: str = "DEFAULT") -> torchvision.models.WeightsEnum:
    """torchvision's weights for course model ``name``, e.g. ``ResNet50_Weights.IMAGENET1K_V2``.

    ``weights`` is ``"DEFAULT"``, ``"IMAGENET1K_V1"`` or ``"IMAGENET1K_V2"`` (resnet50/101/152).
    """
    enum = torchvision.models.get_model_weights(_check_arch(name))
    if isinstance(weights, enum):
        return weights
    if not isinstance(weights, str) or weights not in enum.__members__:
        raise ValueError(
            f"unknown weights {weights!r} for {name}: torchvision's {enum.__name__} has "
            f"{list(enum.__members__)} (or pass the path of a saved state dict)"
        )
    return enum[weights]


def _is_path(weights: Any) -> bool:
    if isinstance(weights, Path):
        return True
    return isinstance(weights, str) and (
        os.sep in weights or weights.endswith((".pt", ".pth")) or Path(weights).is_file()
    )


def _cached_file(url: str) -> Path:
    # Where torch.hub.load_state_dict_from_url keeps a download (what get_state_dict uses).
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _download_hint(weights: torchvision.models.WeightsEnum) -> str:
    target = _cached_file(weights.url)
    return (
        f"{weights} needs {weights.url} ({weights.meta.get('_file_size', '?')} MB). On a machine "
        f'with a network run `python -c "import torchvision; torchvision.models.{weights}'
        f'.get_state_dict()"` or download the file, then copy it to {target} (the torch hub '
        "cache; TORCH_HOME moves it)."
    )


def _torchvision_state_dict(weights: torchvision.models.WeightsEnum) -> dict[str, torch.Tensor]:
    cached = _cached_file(weights.url)
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    if settings.offline():
        raise WeightsUnavailableError(
            f"{weights} is not in the cache and downloads are off ({settings.OFFLINE_ENV}=1). "
            + _download_hint(weights)
        )
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; a bad hash a RuntimeError
        raise WeightsUnavailableError(
            f"could not download {weights}: {err}. " + _download_hint(weights)
        ) from err


def read_weights_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A saved state dict and its metadata (empty if none) from ``path``, with weights_only=True.

    The file holds a plain state dict, or ``{"state_dict": ..., "meta": {...}}`` as written by
    :func:`helpers.transfer.save_source_model`.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which file, not a pickle trace
        raise WeightsUnavailableError(f"cannot read weights file {path}: {err}") from err
    meta: dict[str, Any] = {}
    if isinstance(obj, Mapping) and "state_dict" in obj:
        meta = dict(obj.get("meta") or {})
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise WeightsMismatchError(
            f"{path} does not hold a state dict (a mapping of names to tensors), nor a dict "
            "with one under 'state_dict'"
        )
    return dict(obj), meta


# --------------------------------------------------------------------------- the checked load


def _head_keys(keys: Any) -> set[str]:
    return {k for k in keys if k == HEAD or k.startswith(HEAD + ".")}


def _attention_module(key: str) -> str | None:
    """'layer1.0.se.fc1.weight' -> 'layer1.0.se'; None for a key outside attention modules."""
    parts = key.split(".")
    if ATTENTION in parts[:-1]:
        return ".".join(parts[: parts.index(ATTENTION) + 1])
    return None


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _listing(title: str, rows: list[str]) -> list[str]:
    if not rows:
        return []
    shown = rows[:_SHOWN] + ([f"... and {len(rows) - _SHOWN} more"] if len(rows) > _SHOWN else [])
    return [f"  {title} ({len(rows)}):"] + [f"    {r}" for r in shown]


def _mismatch_message(
    model_sd: Mapping[str, torch.Tensor],
    source_sd: Mapping[str, torch.Tensor],
    missing: list[str],
    unexpected: list[str],
    mismatched: list[str],
    source: str,
    why_not_head: str,
) -> str:
    lines = [f"the weights from {source} do not fit the model:"]
    lines += _listing(
        "missing (in the model, not in the weights)",
        [f"{k} {_shape(model_sd[k])}" for k in missing],
    )
    lines += _listing(
        "unexpected (in the weights, not in the model)",
        [f"{k} {_shape(source_sd[k])}" for k in unexpected],
    )
    lines += _listing(
        "mismatched shapes",
        [f"{k}: model {_shape(model_sd[k])}, weights {_shape(source_sd[k])}" for k in mismatched],
    )
    lines.append(
        f"Only the head `{HEAD}` may differ, and only when a new one is asked for "
        f"(num_classes different from the weights', or a head of another design); {why_not_head}. "
        "Attention modules (`se`) the source network lacks may be missing. Nothing was loaded."
    )
    return "\n".join(lines)


def load_weights(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    new_head: bool = False,
    source: str = "a state dict",
    reason: str = "",
) -> LoadReport:
    """Copy ``state_dict`` into ``model``, refusing any partial load that was not asked for.

    Allowed differences: with ``new_head=True`` every ``fc.*`` key may be missing, unexpected
    or of another shape (the model keeps its freshly initialised head); keys of attention
    modules (``...se...``) may be missing (the source had none). Anything else raises
    :class:`WeightsMismatchError` listing missing, unexpected and mismatched keys with shapes,
    before any tensor is copied. Returns a :class:`LoadReport`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    model_sd = model.state_dict()
    missing = [k for k in model_sd if k not in state_dict]
    unexpected = [k for k in state_dict if k not in model_sd]
    mismatched = [
        k for k in model_sd if k in state_dict and model_sd[k].shape != state_dict[k].shape
    ]
    head = _head_keys(model_sd) | _head_keys(state_dict)
    new_attention = {k for k in missing if _attention_module(k) is not None}
    allowed = (head if new_head else set()) | new_attention
    bad = [k for k in (*missing, *unexpected, *mismatched) if k not in allowed]
    if bad:
        why = (
            "a new head was asked for, but other keys differ"
            if new_head
            else "no new head was asked for"
        )
        raise WeightsMismatchError(
            _mismatch_message(
                model_sd,
                state_dict,
                [k for k in missing if k not in allowed],
                [k for k in unexpected if k not in allowed],
                [k for k in mismatched if k not in allowed],
                source,
                why,
            )
        )
    to_load = {
        k: v for k, v in state_dict.items() if k in model_sd and not (new_head and k in head)
    }
    result = model.load_state_dict(to_load, strict=False)
    assert not result.unexpected_keys  # filtered above; a failure here is a bug of this module
    new_modules = sorted({_attention_module(k) for k in new_attention}, key=_natural)
    if new_head:
        new_modules.append(HEAD)
    return LoadReport(source, len(to_load), new_head, new_modules, reason if new_head else "")


def _natural(name: str) -> list[Any]:
    # layer1.2.se before layer1.10.se
    return [int(p) if p.isdigit() else p for p in name.split(".")]


def _classes_in(state_dict: Mapping[str, torch.Tensor]) -> int | None:
    """The class count of the head in a state dict: rows of its last fc weight matrix."""
    weights = [k for k in state_dict if k.startswith(HEAD) and k.endswith("weight")]
    if not weights:
        return None
    last = max(weights, key=_natural)
    return int(state_dict[last].shape[0])


def _same_head_design(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether the model's head has the weights' head keys (ignoring the class count)."""
    return _head_keys(model.state_dict()) == _head_keys(state_dict)


def load_pretrained(
    name: str,
    weights: str | os.PathLike | torchvision.models.WeightsEnum = "DEFAULT",
    num_classes: int | None = None,
    *,
    new_head: bool = False,
    verbose: bool = True,
    **model_kwargs: Any,
) -> nn.Module:
    """Course model ``name`` with pretrained weights, checked key by key.

    ``weights``: a torchvision weights name (``"DEFAULT"``, ``"IMAGENET1K_V1"``,
    ``"IMAGENET1K_V2"`` for resnet50/101/152) or the path of a saved state dict (as written by
    :func:`helpers.transfer.save_source_model`). ``num_classes=None`` keeps the weights' head
    (1000 ImageNet classes); another count builds a new ``fc``, and so does ``new_head=True``
    (other classes that happen to be as many as the weights'). ``model_kwargs`` go to the
    builder (``stem=``, ``width=`` ... must match the weights). se/cbam/ta_resnet50 load
    torchvision's resnet50 backbone; their attention modules (and TA-ResNet50's head) start
    new. The :class:`LoadReport` is printed (``verbose``) and kept as ``model.load_report``.
    Offline with no cached file: :class:`WeightsUnavailableError` saying what to download and
    where to put it. Maps x: (N, 3, H, W) -> logits (N, num_classes).
    """
    if num_classes is not None:
        check_int("num_classes", num_classes, 1)
    if _is_path(weights):
        state_dict, meta = read_weights_file(weights)
        source = f"{weights}" + (f" ({meta['description']})" if "description" in meta else "")
    else:
        tv_weights = torchvision_weights(name, weights)
        state_dict = _torchvision_state_dict(tv_weights)
        source = f"torchvision {tv_weights}"
    weight_classes = _classes_in(state_dict)
    classes = num_classes if num_classes is not None else weight_classes
    if classes is None:
        raise WeightsMismatchError(f"{source} has no head `{HEAD}`: pass num_classes=")
    model = course_models.create(name, num_classes=classes, **model_kwargs)
    reasons = ["new_head=True"] if new_head else []
    if num_classes is not None and num_classes != weight_classes:
        reasons.append(f"num_classes={num_classes}, the weights have {weight_classes} classes")
    if not _same_head_design(model, state_dict):
        reasons.append("the model's head has another design than the weights'")
    report = load_weights(
        model, state_dict, new_head=bool(reasons), source=source, reason="; ".join(reasons)
    )
    model.load_report = report
    if verbose:
        print(report)
    return model


def pretrained_meta(
    name: str, weights: str | os.PathLike | torchvision.models.WeightsEnum = "DEFAULT"
) -> dict[str, Any]:
    """What a set of weights expects and predicts: ``transforms``, ``categories`` and more.

    For torchvision weights: the weights' own preprocessing (``weights.transforms()``: resize,
    centre crop, ImageNet mean/std), the 1000 ImageNet class names, the published accuracy.
    For a saved file: its metadata, with ``transforms`` rebuilt from its image size, mean and
    std. Needs no download.
    """
    if _is_path(weights):
        _, meta = read_weights_file(weights)
        needed = ("image_size", "mean", "std", "categories")
        if any(k not in meta for k in needed):
            raise ValueError(
                f"{weights} has no metadata with {needed}: cannot build its transforms"
            )
        size = int(meta["image_size"])
        meta["transforms"] = v2.Compose(
            [
                v2.ToImage(),
                v2.Resize([size, size], antialias=True),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean=list(meta["mean"]), std=list(meta["std"])),
            ]
        )
        return meta
    tv_weights = torchvision_weights(name, weights)
    metrics = tv_weights.meta.get("_metrics", {}).get("ImageNet-1K", {})
    return {
        "weights": str(tv_weights),
        "transforms": tv_weights.transforms(),
        "categories": list(tv_weights.meta["categories"]),
        "acc@1": metrics.get("acc@1"),
        "acc@5": metrics.get("acc@5"),
        "num_params": tv_weights.meta.get("num_params"),
        "recipe": tv_weights.meta.get("recipe"),
        "url": tv_weights.url,
        "cache_file": str(_cached_file(tv_weights.url)),
    }
