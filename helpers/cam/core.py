"""Class activation maps on the grad-cam package, without its usual traps.

``grad_cam(model, images)`` returns one map per image, (B, H, W) in [0, 1], for any method of
the package that fits a CNN. Around the package's CAM object it:

- picks the target layer from the model's structure (the last block of the last stage);
- works inside ``torch.no_grad()`` (gradients are switched back on for the call);
- leaves the model as it found it: train/eval mode of every module, ``requires_grad`` flags,
  the ``.grad`` of every parameter (the package calls ``model.eval()`` and
  ``model.zero_grad()``, which would wipe a caller's accumulated gradients);
- releases the package's hooks when the call ends, even on an error (:func:`cam_session`);
- turns in-place activations off for the call. The package keeps the target layer's output by
  reference (``output.cpu().detach()`` shares storage on a CPU), so an in-place ReLU right
  after the target layer (a target such as ``block.bn1``) would overwrite the stored
  activation with its rectified copy, and the map would be computed from the wrong tensor.
  (The default target, a whole block, ends with its own ReLU, so it is not affected.)

Gradients reach the target layer through the input, not the weights: the call freezes the
parameters and asks for the gradient of a copy of the input. The maps are the same (they need
d score / d activation only), no weight gradient is computed, and no ``.grad`` is written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytorch_grad_cam as pgc
import torch
import tqdm
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from helpers.validate import check_int

__all__ = [
    "BATCHED_METHODS",
    "METHODS",
    "cam_session",
    "default_target_layer",
    "grad_cam",
    "model_state",
    "predicted_targets",
]

# Every method of the package that makes a per-class map from one convolutional layer.
# Left out: FinerCAM (its targets compare a class with its nearest rivals, a different
# question), SESS and RefineCAM (wrappers that run another method on patches or refine it),
# guided backpropagation (pixel gradients, not a CAM) and deep feature factorisation
# (concepts, not a class map).
METHODS: dict[str, type] = {
    "gradcam": pgc.GradCAM,
    "hirescam": pgc.HiResCAM,
    "gradcam++": pgc.GradCAMPlusPlus,
    "xgradcam": pgc.XGradCAM,
    "layercam": pgc.LayerCAM,
    "eigencam": pgc.EigenCAM,
    "eigengradcam": pgc.EigenGradCAM,
    "gradcamelementwise": pgc.GradCAMElementWise,
    "shapleycam": pgc.ShapleyCAM,
    "kpcacam": pgc.KPCA_CAM,
    "fem": pgc.FEM,
    "scorecam": pgc.ScoreCAM,
    "ablationcam": pgc.AblationCAM,
    "fullgrad": pgc.FullGrad,  # ignores the target layer: it uses every conv/BN bias
    "random": pgc.RandomCAM,  # a baseline: random channel weights
}
# Methods that run one forward pass per channel of the target layer (2,048 at ResNet50's
# layer4); grad_cam batches those passes with ``batch_size``.
BATCHED_METHODS = ("scorecam", "ablationcam")


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return model


def method_class(method: str) -> type:
    """The package's CAM class for a method name; an unknown name lists the known ones."""
    key = method.lower() if isinstance(method, str) else method
    if key not in METHODS:
        raise ValueError(f"unknown CAM method {method!r}; known methods: {', '.join(METHODS)}")
    return METHODS[key]


def _is_stage(module: nn.Module) -> bool:
    """A residual stage: a non-empty nn.Sequential of blocks that contain convolutions."""
    return (
        isinstance(module, nn.Sequential)
        and len(module) > 0
        and any(isinstance(m, nn.Conv2d) for m in module.modules())
    )


def default_target_layer(model: nn.Module) -> nn.Module:
    """The last block of the last residual stage: where Grad-CAM is usually computed.

    Uses ``model.stage_names`` (every helpers ResNet has it); otherwise, for torchvision's
    and other ResNets, the last top-level ``nn.Sequential`` holding convolutions, so a head
    built as an ``nn.Sequential`` of Linear layers is never chosen.
    """
    _check_model(model)
    names = getattr(model, "stage_names", None)
    if names:
        stage = getattr(model, names[-1], None)
        if not _is_stage(stage):
            raise ValueError(f"model.stage_names[-1] = {names[-1]!r} is not a stage of blocks")
        return stage[-1]
    stages = [m for m in model.children() if _is_stage(m)]
    if not stages:
        raise ValueError(
            f"found no residual stage (a top-level nn.Sequential of conv blocks) in "
            f"{type(model).__name__}; pass target_layer= (e.g. model.layer4[-1])"
        )
    return stages[-1][-1]


def _check_target_layer(model: nn.Module, layer: Any) -> nn.Module:
    if not isinstance(layer, nn.Module):
        raise TypeError(f"target_layer must be an nn.Module, got {type(layer).__name__}")
    if not any(m is layer for m in model.modules()):
        raise ValueError(
            "target_layer is not a module of this model (hooks on it would never run); pass "
            "a submodule such as model.layer3[-1]"
        )
    return layer


# ----------------------------------------------------------------------- model state


@dataclass
class _ModelState:
    """What the package (and the call) may change on a model, saved to be put back."""

    training: dict[nn.Module, bool] = field(default_factory=dict)
    requires_grad: dict[nn.Parameter, bool] = field(default_factory=dict)
    grads: dict[nn.Parameter, Tensor | None] = field(default_factory=dict)
    inplace: dict[nn.Module, bool] = field(default_factory=dict)

    @classmethod
    def capture(cls, model: nn.Module) -> _ModelState:
        state = cls()
        for m in model.modules():
            state.training[m] = m.training
            if isinstance(getattr(m, "inplace", None), bool):
                state.inplace[m] = m.inplace
        for p in model.parameters():
            state.requires_grad[p] = p.requires_grad
            state.grads[p] = p.grad
        return state

    def restore(self) -> None:
        for m, training in self.training.items():
            m.training = training  # per module: a frozen BN in eval inside a training model
        for m, inplace in self.inplace.items():
            m.inplace = inplace
        for p, flag in self.requires_grad.items():
            p.requires_grad_(flag)
        for p, grad in self.grads.items():
            p.grad = grad


@contextlib.contextmanager
def model_state(model: nn.Module) -> Iterator[None]:
    """Put back every module's mode, in-place flags, ``requires_grad`` and ``.grad`` on exit."""
    state = _ModelState.capture(_check_model(model))
    try:
        yield
    finally:
        state.restore()


class _SilentTqdm:
    """Stands in for the ``tqdm`` module inside grad-cam: the same bars, switched off."""

    @staticmethod
    def tqdm(*args: Any, **kwargs: Any) -> tqdm.tqdm:
        return tqdm.tqdm(*args, **{**kwargs, "disable": True})


# grad-cam 1.5 draws a tqdm bar per image inside ScoreCAM and AblationCAM (score_cam.py,
# ablation_cam.py: ``tqdm.tqdm(range(...))``) and has no option to turn it off; in a notebook
# the bars would bury the figures. Those two modules look the name ``tqdm`` up in their own
# globals at call time, so it is swapped there for one call and always put back.
_MODULES_WITH_BARS = (pgc.score_cam, pgc.ablation_cam)


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """Silence the package's per-image tqdm bars (ScoreCAM, AblationCAM) for one call."""
    originals = [module.tqdm for module in _MODULES_WITH_BARS]
    for module in _MODULES_WITH_BARS:
        module.tqdm = _SilentTqdm
    try:
        yield
    finally:
        for module, original in zip(_MODULES_WITH_BARS, originals, strict=True):
            module.tqdm = original


@contextlib.contextmanager
def cam_session(
    model: nn.Module,
    target_layer: nn.Module | None = None,
    method: str = "gradcam",
    *,
    batch_size: int = 64,
) -> Iterator[Any]:
    """A package CAM object for ``model``; on exit its hooks are gone and the model is as before.

    Inside the block the model is in eval mode, its parameters are frozen and in-place
    activations are off (see the module docstring). ``batch_size`` is the number of
    forward passes ScoreCAM and AblationCAM run at once.
    """
    _check_model(model)
    cls = method_class(method)
    batch_size = check_int("batch_size", batch_size, 1)
    layer = (
        default_target_layer(model)
        if target_layer is None
        else _check_target_layer(model, target_layer)
    )
    cam = None
    with model_state(model), _quiet_progress():
        for m in model.modules():
            if isinstance(getattr(m, "inplace", None), bool):
                m.inplace = False
        # ShapleyCAM differentiates the gradient again (a Hessian-vector product), which
        # needs a graph through the weights; it uses autograd.grad, so no .grad is written.
        needs_weight_graph = cls is pgc.ShapleyCAM
        for p in model.parameters():
            p.requires_grad_(needs_weight_graph)
        try:
            if cls is pgc.FullGrad:
                cam = cls(model, [])
            elif cls is pgc.AblationCAM:
                # A fresh ablation layer: the package's default argument is one shared instance.
                cam = cls(model, [layer], ablation_layer=pgc.AblationLayer(), batch_size=batch_size)
            else:
                cam = cls(model, [layer])
                cam.batch_size = batch_size  # read by ScoreCAM
            yield cam
        finally:
            if cam is not None:
                cam.activations_and_grads.release()


# ----------------------------------------------------------------------- the main call


def _check_images(images: Any) -> Tensor:
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a (B, C, H, W) float tensor, got {type(images).__name__}")
    if images.dim() != 4:
        hint = " (add a batch dimension with x.unsqueeze(0))" if images.dim() == 3 else ""
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}{hint}")
    if not images.is_floating_point():
        raise TypeError(
            f"images must be normalised float tensors as the model expects, got {images.dtype}"
        )
    if images.shape[0] == 0:
        raise ValueError(
            f"images is an empty batch, shape {tuple(images.shape)}: give at least one image"
        )
    finite = torch.isfinite(images).flatten(1).all(dim=1)
    if not finite.all():
        bad = (~finite).nonzero().flatten().tolist()
        raise ValueError(
            f"images {bad[:10]} hold NaN or infinite values: their maps would be all NaN. "
            "Check how they were loaded and normalised (a std of 0 divides by 0)"
        )
    return images


def _check_targets(targets: Any, batch: int, num_outputs: int | None) -> list[int] | None:
    if targets is None:
        return None
    if isinstance(targets, (int, np.integer)) and not isinstance(targets, bool):
        targets = [int(targets)] * batch
    if isinstance(targets, Tensor):
        targets = targets.tolist()
    if isinstance(targets, np.ndarray):
        targets = targets.tolist()
    if not isinstance(targets, Sequence) or len(targets) != batch:
        raise ValueError(
            f"targets must be None (predicted class), one class index, or {batch} class "
            f"indices (one per image), got {targets!r}"
        )
    out = [check_int("each target class", t, 0) for t in targets]
    if num_outputs is not None and max(out) >= num_outputs:
        raise ValueError(f"target class {max(out)} is out of range for {num_outputs} classes")
    return out


def predicted_targets(model: nn.Module, images: Tensor) -> list[int]:
    """The model's predicted class per image (eval mode, no gradients); model left as found."""
    with model_state(model), torch.no_grad():
        model.eval()
        return model(images.to(next(model.parameters()).device)).argmax(dim=1).tolist()


def grad_cam(
    model: nn.Module,
    images: Tensor,
    targets: Sequence[int] | Tensor | int | None = None,
    target_layer: nn.Module | None = None,
    method: str = "gradcam",
    *,
    batch_size: int = 64,
) -> np.ndarray:
    """Class activation maps: images (B, C, H, W) -> np.float32 array (B, H, W) in [0, 1].

    ``targets``: a class index per image, one index for all, or None for the predicted
    class. ``target_layer`` defaults to :func:`default_target_layer`. ``method`` is a key
    of :data:`METHODS`. ``batch_size``: forward passes at once for ScoreCAM/AblationCAM.
    Each map is upsampled to the image size and scaled to [0, 1] by the package (a map
    that is zero everywhere stays zero). An empty batch, NaN or infinite pixels, or a map
    that comes out NaN are a ValueError naming the images. Works under ``torch.no_grad()``;
    the model is left exactly as it was (mode, ``requires_grad``, ``.grad``, no hooks).
    """
    _check_model(model)
    images = _check_images(images)
    num_outputs = getattr(model, "num_classes", None)
    classes = _check_targets(targets, images.shape[0], num_outputs)
    device = next(model.parameters()).device
    # A copy that asks for its gradient, so activations carry gradients with frozen weights.
    x = images.detach().to(device).clone().requires_grad_(True)
    with (
        torch.enable_grad(),
        cam_session(model, target_layer, method, batch_size=batch_size) as cam,
    ):
        wanted = None if classes is None else [ClassifierOutputTarget(c) for c in classes]
        maps = cam(input_tensor=x, targets=wanted)
        cam.outputs = None  # drop the logits and their graph now, not at garbage collection
    maps = np.asarray(maps, dtype=np.float32)
    broken = np.isnan(maps).reshape(len(maps), -1).any(axis=1)
    if broken.any():  # finite images, yet the model's activations or gradients were not
        raise ValueError(
            f"the maps of images {np.flatnonzero(broken)[:10].tolist()} are NaN: the model's "
            "activations or gradients at the target layer are not finite for them (check the "
            "model's weights and outputs on these images)"
        )
    return maps
