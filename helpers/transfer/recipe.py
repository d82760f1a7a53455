"""One short fine-tuning recipe for every run of a transfer experiment.

A comparison of transfer strategies is fair only if every run trains the same way: the same
number of SGD steps, the same schedule, the same data order for a seed. :class:`FineTuneRecipe`
holds that recipe once::

    recipe = FineTuneRecipe(target, image_size=32, steps=30, epochs=3, batch_size=32)
    history, acc = recipe.run(model, per_class(target.train, 5), seed=0, lr=0.05)

A few labelled images are repeated (:func:`repeat_to`) so that every epoch has the same number
of steps whatever the training set's size, and images of another size than the model expects
are resized batch by batch (:class:`Resized`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from helpers.data import DataSplits, DeviceLoader, ImageTensorSet
from helpers.train import History, evaluate, fit
from helpers.transfer.data import Resized, repeat_to
from helpers.validate import check_int

__all__ = ["FineTuneRecipe"]


def _check_split(name: str, split: object) -> ImageTensorSet:
    if not isinstance(split, ImageTensorSet):
        raise ValueError(
            f"{name} must be an ImageTensorSet (small images held as tensors), "
            f"got {type(split).__name__}"
        )
    if len(split) == 0:
        raise ValueError(f"{name} holds no images")
    return split


@dataclass(frozen=True)
class FineTuneRecipe:
    """Loaders and training settings shared by every run of a transfer experiment.

    data: the target task; its ``mean``, ``std`` and ``flip`` normalise and augment the
        images (give it the *source's* mean and std), its ``val`` and ``test`` splits measure.
    image_size: the side S the model expects (the source's resolution); splits of another
        size are resized to S x S on the fly.
    steps: SGD steps of one run, about (``steps // epochs`` per epoch, whole batches only).
    epochs: epochs of one run, with a cosine learning-rate schedule over them.
    batch_size: the training batch (the whole split when it holds fewer images).
    device: where the batches and the model go (None: where the images are, the CPU).
    eval_batch_size: the batch of the evaluation loaders.
    """

    data: DataSplits
    image_size: int
    steps: int
    epochs: int
    batch_size: int
    device: torch.device | str | None = None
    eval_batch_size: int = 512

    def __post_init__(self) -> None:
        if not isinstance(self.data, DataSplits):
            raise ValueError(f"data must be a DataSplits, got {type(self.data).__name__}")
        check_int("image_size", self.image_size, 1)
        check_int("epochs", self.epochs, 1)
        check_int("steps", self.steps, self.epochs)  # at least one step per epoch
        check_int("batch_size", self.batch_size, 1)
        check_int("eval_batch_size", self.eval_batch_size, 1)

    def loader(
        self,
        split: ImageTensorSet,
        data: DataSplits | None = None,
        *,
        train: bool = False,
        seed: int = 0,
        resize: bool = True,
    ) -> DeviceLoader | Resized:
        """Batches of ``split``: x (B, C, S, S) float, normalised, and y (B,) int64.

        ``data`` (default: the recipe's) gives the mean, std and flip. For training
        (``train=True``) the split is repeated to ``batch_size * steps // epochs`` images and
        shuffled and augmented (random crop with padding S // 8, flips if ``data.flip``) in an
        order fixed by ``seed``; the last incomplete batch is dropped. Otherwise the images
        come in order, unchanged. With ``resize`` (default), S is ``image_size``; without it,
        S is the split's own size.
        """
        data = self.data if data is None else data
        _check_split("split", split)
        batch = min(self.batch_size, len(split)) if train else self.eval_batch_size
        if train:  # a few images are repeated so that every epoch has the same number of steps
            split = repeat_to(split, batch * self.steps // self.epochs)
        out = DeviceLoader.from_set(
            split,
            batch_size=batch,
            mean=data.mean,
            std=data.std,
            device=self.device,
            shuffle=train,
            augment=train,
            pad=split.image_size // 8,
            flip=data.flip,
            seed=seed,
            drop_last=train,
        )
        if resize and split.image_size != self.image_size:
            return Resized(out, self.image_size)
        return out

    def run(
        self,
        model: nn.Module,
        train_split: ImageTensorSet,
        *,
        seed: int,
        lr: float | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        data: DataSplits | None = None,
        curves: bool = False,
        resize: bool = True,
    ) -> tuple[History, float]:
        """Fine-tune ``model`` in place on ``train_split``; returns (history, test accuracy).

        ``model`` maps x (B, C, S, S) to logits (B, num_classes). Training is
        :func:`helpers.train.fit` for ``epochs`` epochs with a cosine schedule, either SGD at
        ``lr`` or your own ``optimizer`` (e.g. over :func:`param_groups`): give exactly one.
        ``seed`` fixes the data order and the augmentation. With ``curves`` the history also
        holds validation accuracy after every epoch. The accuracy, in [0, 1], is on
        ``data.test`` (default: the recipe's data).
        """
        if (lr is None) == (optimizer is None):
            raise ValueError("give exactly one of lr and optimizer")
        data = self.data if data is None else data
        _check_split("data.test", data.test)
        if curves:
            _check_split("data.val (needed for curves=True)", data.val)
        train = self.loader(train_split, data, train=True, seed=seed, resize=resize)
        val = self.loader(data.val, data, resize=resize) if curves else None
        lr_or_opt = {"optimizer": optimizer} if optimizer is not None else {"lr": lr}
        history = fit(
            model.to(self.device),
            train,
            val,
            epochs=self.epochs,
            schedule="cosine",
            progress=False,
            seed=seed,
            **lr_or_opt,
        )
        return history, evaluate(model, self.loader(data.test, data, resize=resize))["acc"]
