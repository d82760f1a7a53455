"""Fine-tuning controls: a new head, frozen stages, frozen BatchNorm statistics, per-group LRs.

    replace_head(model, 10)                       # new fc, 10 classes
    freeze(model, until="layer3")                 # stem + layer1..3 frozen, layer4 + fc train
    freeze(model, until="layer4", bn_stats=True)  # feature extraction, BN in eval mode for good
    opt = torch.optim.SGD(param_groups(model, lr=0.1, backbone_lr=0.01), momentum=0.9)
    summary(model)                                # parameters per stage, frozen or not

The parts of a model follow the course's model API: the stem is every top-level module before
the first of ``model.stage_names``, each stage is one of them, and the head is the rest
(pooling, dropout and ``fc``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

__all__ = [
    "adapt_stem",
    "freeze",
    "frozen_bn_modules",
    "model_parts",
    "param_groups",
    "replace_head",
    "summary",
    "unfreeze",
    "weight_change",
]

STEM, HEAD = "stem", "head"
_BN_HOOK = "_frozen_bn_stats_hook"  # attribute holding the forward pre-hook of a frozen BN


def _stages(model: nn.Module) -> tuple[str, ...]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    names = tuple(getattr(model, "stage_names", ()))
    if not names:
        raise TypeError(
            f"{type(model).__name__} has no `stage_names`: freeze/summary need a model of "
            "helpers.models (stem, stages, head)"
        )
    return names


def model_parts(model: nn.Module) -> dict[str, list[nn.Module]]:
    """Top-level modules by part: ``{"stem": [...], "layer1": [...], ..., "head": [...]}``."""
    stages = _stages(model)
    parts: dict[str, list[nn.Module]] = {STEM: [], **{s: [] for s in stages}, HEAD: []}
    current = STEM
    for name, module in model.named_children():
        if name in stages:
            current = name
            parts[name].append(module)
        else:
            parts[current if current == STEM else HEAD].append(module)
    return parts


def _parameters(modules: Iterable[nn.Module]) -> Iterator[nn.Parameter]:
    for module in modules:
        yield from module.parameters()


def replace_head(
    model: nn.Module, num_classes: int, hidden: int | None = None, dropout: float = 0.0
) -> nn.Module:
    """Give ``model`` a new, trainable head ``fc`` for ``num_classes`` classes; returns the model.

    Through ``model.reset_classifier``: ``nn.Linear(num_features, num_classes)``, or with
    ``hidden``/``dropout`` a Linear-ReLU-Dropout-Linear head (TA-ResNet50's with 512, 0.5).
    Logits (N, num_classes).
    """
    reset = getattr(model, "reset_classifier", None)
    if reset is None:
        raise TypeError(
            f"{type(model).__name__} has no reset_classifier(num_classes, hidden, dropout): "
            "use a model of helpers.models"
        )
    reset(num_classes, hidden=hidden, dropout=dropout)
    return model


def adapt_stem(model: nn.Module) -> nn.Module:
    """Let an ImageNet-layout network keep small images large: no stride in the stem.

    ``conv1`` keeps its (pretrained) 7x7 weights but moves with stride 1, and the 3x3/2
    max-pool is dropped, so a 32x32 image reaches layer1 at 32x32 instead of 8x8 (the usual
    alternative to upsampling CIFAR images for ImageNet weights). Four times fewer
    downsampling: the stages then cost 16 times more per image. Returns the model.
    """
    conv, pool = getattr(model, "conv1", None), getattr(model, "maxpool", None)
    if not isinstance(conv, nn.Conv2d) or not isinstance(pool, nn.MaxPool2d):
        raise TypeError(
            "adapt_stem needs the ImageNet stem (conv1 with a stride + maxpool); this model "
            f"has conv1={type(conv).__name__}, maxpool={type(pool).__name__}"
        )
    removed = conv.stride[0] * pool.stride
    conv.stride = (1, 1)
    model.maxpool = nn.Identity()
    if hasattr(model, "total_stride"):  # the model's input-size check reads it
        model.total_stride //= removed
    return model


def _bn_eval_hook(module: nn.Module, args: Any) -> None:
    # Runs before every forward: whatever model.train() set, this BN normalises with its
    # running statistics and never updates them.
    module.eval()


def _freeze_bn_stats(module: nn.Module) -> None:
    for bn in module.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm) and not hasattr(bn, _BN_HOOK):
            setattr(bn, _BN_HOOK, bn.register_forward_pre_hook(_bn_eval_hook))
            bn.eval()


def _unfreeze_bn_stats(module: nn.Module, training: bool) -> None:
    for bn in module.modules():
        handle = getattr(bn, _BN_HOOK, None)
        if handle is not None:
            handle.remove()
            delattr(bn, _BN_HOOK)
            bn.train(training)


def _up_to(model: nn.Module, until: str) -> list[str]:
    names = [STEM, *_stages(model)]
    if until not in names:
        raise ValueError(f"until must be one of {names} (the stem or a stage), got {until!r}")
    return names[: names.index(until) + 1]


def freeze(model: nn.Module, until: str = "layer3", *, bn_stats: bool = False) -> nn.Module:
    """Freeze the stem and every stage up to and including ``until``; returns the model.

    Frozen parameters get ``requires_grad=False`` (no gradient, no update, no weight decay).
    With ``bn_stats=True`` the BatchNorm layers of the frozen parts also keep their running
    statistics: they normalise with them in training too, and ``model.train()`` does not undo
    it (a forward pre-hook puts them back in eval mode). ``until`` is ``"stem"`` or a name of
    ``model.stage_names``; ``until=model.stage_names[-1]`` is feature extraction (only the
    head trains).
    """
    parts = model_parts(model)
    for part in _up_to(model, until):
        for module in parts[part]:
            for p in module.parameters():
                p.requires_grad_(False)
            if bn_stats:
                _freeze_bn_stats(module)
    return model


def unfreeze(model: nn.Module) -> nn.Module:
    """Undo :func:`freeze`: every parameter trainable, every BatchNorm back to normal."""
    _stages(model)
    for p in model.parameters():
        p.requires_grad_(True)
    _unfreeze_bn_stats(model, model.training)
    return model


def frozen_bn_modules(model: nn.Module) -> list[str]:
    """Names of the BatchNorm layers whose statistics :func:`freeze` froze."""
    return [n for n, m in model.named_modules() if hasattr(m, _BN_HOOK)]


def param_groups(
    model: nn.Module,
    lr: float,
    backbone_lr: float | None = None,
    *,
    new_modules: Sequence[str] = (),
    weight_decay: float | None = None,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with discriminative learning rates.

    The head (and the modules named in ``new_modules``, e.g. newly initialised attention
    modules from a :class:`LoadReport`) train with ``lr``; the rest of the backbone with
    ``backbone_lr`` (default ``lr / 10``). Frozen parameters are left out; an empty group is
    dropped. ``weight_decay`` (if given) is set in every group. Use as
    ``torch.optim.SGD(param_groups(model, 0.1), momentum=0.9)``.
    """
    for label, value in (("lr", lr), ("backbone_lr", backbone_lr)):
        if value is not None and (isinstance(value, bool) or not value >= 0):
            raise ValueError(f"{label} must be a number >= 0, got {value!r}")
    backbone_lr = lr / 10 if backbone_lr is None else backbone_lr
    modules = dict(model.named_modules())
    unknown = [n for n in new_modules if n not in modules]
    if unknown:
        raise ValueError(f"new_modules names no module of the model: {unknown}")
    fast = {id(p) for p in _parameters(model_parts(model)[HEAD])}
    fast |= {id(p) for name in new_modules for p in modules[name].parameters()}
    head = [p for p in model.parameters() if p.requires_grad and id(p) in fast]
    backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in fast]
    groups = []
    for name, params, group_lr in (("backbone", backbone, backbone_lr), ("head", head, lr)):
        if params:
            group: dict[str, Any] = {"params": params, "lr": group_lr, "name": name}
            if weight_decay is not None:
                group["weight_decay"] = weight_decay
            groups.append(group)
    if not groups:
        raise ValueError("every parameter is frozen: nothing to optimise")
    return groups


def summary(model: nn.Module, *, show: bool = True) -> pd.DataFrame:
    """Parameters per part (stem, each stage, head): how many, how many trainable, BN stats.

    Returns a DataFrame indexed by part with columns ``parameters``, ``trainable``,
    ``status`` ("trainable", "frozen" or "partly frozen") and ``BN stats`` ("frozen" where
    :func:`freeze` froze them); printed as well unless ``show=False``.
    """
    rows = {}
    for part, modules in model_parts(model).items():
        params = list(_parameters(modules))
        total = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        status = "trainable" if trainable == total else "frozen" if trainable == 0 else "partly"
        bns = [m for mod in modules for m in mod.modules() if isinstance(m, nn.BatchNorm2d)]
        frozen_bn = sum(hasattr(m, _BN_HOOK) for m in bns)
        bn = "-" if not bns else "frozen" if frozen_bn == len(bns) else "updated"
        if 0 < frozen_bn < len(bns):
            bn = f"{frozen_bn}/{len(bns)} frozen"
        rows[part] = {"parameters": total, "trainable": trainable, "status": status, "BN stats": bn}
    table = pd.DataFrame(rows).T
    table.loc["total"] = {
        "parameters": table["parameters"].sum(),
        "trainable": table["trainable"].sum(),
        "status": "",
        "BN stats": "",
    }
    table = table.astype({"parameters": int, "trainable": int})
    if show:
        print(table.to_string(formatters={c: "{:,}".format for c in ("parameters", "trainable")}))
    return table


@torch.no_grad()
def weight_change(model: nn.Module, before: Mapping[str, torch.Tensor]) -> pd.Series:
    """How far training moved each part: ``||w - w0|| / ||w0||`` over its weights, per part.

    ``before`` is a copy of the model's ``state_dict()`` taken before training (same keys);
    only parameters count (not BN running statistics). Parts as in :func:`summary`; a part
    whose parameters are all new since ``before`` (a replaced head) is left out.
    """
    changes = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for part, modules in model_parts(model).items():
        keys = [names[id(p)] for p in _parameters(modules)]
        keys = [k for k in keys if k in before and before[k].shape == model.get_parameter(k).shape]
        if not keys:
            continue
        delta = sum(((model.get_parameter(k).cpu() - before[k].cpu()) ** 2).sum() for k in keys)
        norm = sum((before[k].cpu() ** 2).sum() for k in keys)
        changes[part] = (delta.sqrt() / norm.sqrt()).item()
    return pd.Series(changes, name="relative weight change")
