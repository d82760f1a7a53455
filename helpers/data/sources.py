"""Datasets by name: ``load(name)`` and the notebooks' ``course_data(name)``.

Names: "cifar10", "cifar100", "gtsrb" (torchvision, see :mod:`helpers.data.real`) and the
offline "digits" and "shapes" (:mod:`helpers.data.digits`). Your own images:
:func:`helpers.data.load_image_folder`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from helpers.data.core import DatasetUnavailableError, DataSplits
from helpers.data.digits import load_digits
from helpers.data.real import load_cifar10, load_cifar100, load_gtsrb
from helpers.data.shapes import load_shapes
from helpers.settings import OFFLINE_ENV, offline, quick_mode

_LOADERS: dict[str, Callable[..., DataSplits]] = {
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "gtsrb": load_gtsrb,
    "digits": load_digits,
    "shapes": load_shapes,
}
OFFLINE = ("digits", "shapes")
_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "gtsrb": "GTSRB"}


def available() -> list[str]:
    """Names :func:`load` knows."""
    return list(_LOADERS)


def _key(name: str) -> str:
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(_LOADERS)}")
    return key


def load(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    download: bool = True,
    val_size: int | float | None = None,
    seed: int = 0,
    train_size: int | None = None,
    test_size: int | float | None = None,
    **kwargs,
) -> DataSplits:
    """Load a dataset by name as train/val/test :class:`DataSplits`.

    Names: "cifar10", "cifar100", "gtsrb" (torchvision, into the data root or ``root``),
    "digits", "shapes" (offline; ``root``/``download`` do not apply). ``val_size`` images (or
    a fraction) are held out of the training set with a fixed ``seed``; None means the set's
    default (CIFAR 5000, GTSRB 10 %, digits 10 %, shapes 2000). ``train_size``/``test_size``
    shrink those splits (class-stratified) for quick runs. Extra keywords go to the set's
    loader (e.g. ``image_size``; ``in_chans`` for digits; ``classes`` for shapes).
    A real set that is not on disk and cannot be downloaded raises
    :class:`DatasetUnavailableError` saying what is missing and how to get it. With
    ``COURSE_OFFLINE=1`` (as in the test suite) nothing is downloaded.
    """
    key = _key(name)
    options = dict(seed=seed, train_size=train_size, **kwargs)
    if val_size is not None:
        options["val_size"] = val_size
    if test_size is not None:
        options["test_size"] = test_size
    if key in OFFLINE:
        return _LOADERS[key](**options)
    downloads_off = download and offline()
    options.update(root=root, download=download and not downloads_off)
    try:
        return _LOADERS[key](**options)
    except DatasetUnavailableError as err:
        if downloads_off:
            raise type(err)(f"{err}\n(Downloads are off: {OFFLINE_ENV}=1.)") from err
        raise


def course_data(
    name: str,
    *,
    quick: bool | None = None,
    fallback: str = "shapes",
    quick_train_size: int = 4000,
    quick_val_size: int = 1000,
    quick_test_size: int = 1000,
    **kwargs,
) -> DataSplits:
    """The dataset a notebook uses: the real set, shrunk in quick mode, with an offline fallback.

    Full mode loads ``name`` in full and re-raises :class:`DatasetUnavailableError`. Quick mode
    (``quick=None`` reads ``helpers.settings.quick_mode()``) keeps ``quick_train_size`` /
    ``quick_val_size`` / ``quick_test_size`` images (digits, 1,797 images in all, is kept
    whole), and if the real set is unavailable it prints loudly that it falls back to the
    offline ``fallback`` set, whose ``source`` then says so.
    """
    quick = quick_mode() if quick is None else quick
    if not quick:
        return load(name, **kwargs)

    def quick_load(set_name: str, **options) -> DataSplits:
        if _key(set_name) != "digits":
            # The caller's sizes win over quick mode's defaults (``val_size=0.1`` is kept).
            defaults = dict(
                train_size=quick_train_size, val_size=quick_val_size, test_size=quick_test_size
            )
            options = {**defaults, **options}
        splits = load(set_name, **options)
        splits.source = f"{splits.source} [quick mode: shrunk]"
        return splits

    _key(fallback)  # an unknown fallback is an error now, not after a failed download
    try:
        return quick_load(name, **kwargs)
    except DatasetUnavailableError as err:
        label = _LABELS.get(_key(name), name)
        reason, *how_to_get_it = str(err).rstrip(".").splitlines()
        message = (
            f"{label} not available ({reason}); quick mode falls back to the offline "
            f"'{fallback}' set; numbers below are not {label} results"
        )
        bar = "!" * 78
        details = "".join(f"\n   {line}" for line in how_to_get_it)
        print(f"{bar}\n!! {message}{details}\n{bar}", flush=True)
        offline = {k: v for k, v in kwargs.items() if k in ("seed", "image_size")}
        splits = quick_load(fallback, **offline)
        splits.source = f"QUICK-MODE FALLBACK to {splits.source} (instead of {label})"
        splits.extra.update(fallback_from=label, fallback_reason=str(err))
        return splits
