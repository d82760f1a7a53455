"""Random transforms of whole batches on the device, for :class:`DeviceLoader` (``transform=``).

A batch transform draws its random numbers up front, per image, for a whole epoch:
``params = t.sample(n, generator)`` gives tensors with one row per image (drawn on the CPU from
the loader's ``(seed, epoch)`` generator), and ``t(x, *params)`` transforms a batch
x (B, C, H, W) on the device with its images' rows. Because the numbers belong to positions
in the epoch's order, not to batches, a resumed run and every DDP rank see exactly the
augmentation of an uninterrupted single-process run.

A transform runs on the normalised float batch, or, if its ``on_pixels`` is True, on the
uint8 pixels before normalisation (cheaper to move around: RandomCropFlip does that). In a
list, pixel transforms come first::

    DeviceLoader(..., transform=[RandomCropFlip(pad=4), Cutout(size=8)])

Any callable ``t(x)`` without a ``sample`` method works too (on the normalised batch).
The loader applies them to chunks of several batches at once; they work per image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from helpers.validate import check_int

__all__ = ["BatchTransform", "Cutout", "RandomCropFlip", "as_transform_list"]


class BatchTransform:
    """Base class: ``sample`` per-image parameters for an epoch, ``__call__`` on a batch."""

    on_pixels = False  # True: called on uint8 pixels before normalisation

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """Random parameters for ``n`` images: tensors with n rows (none by default)."""
        return ()

    def __call__(self, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        """Transform x (B, C, H, W) given its images' parameters (B rows each)."""
        raise NotImplementedError


class RandomCropFlip(BatchTransform):
    """He et al. 2016's augmentation: a random crop of the image zero-padded by ``pad``
    pixels on each side (black, as torchvision's ``RandomCrop(padding=pad)``), and
    (``flip``) a random horizontal flip with probability 0.5. Runs on the uint8 pixels."""

    on_pixels = True

    def __init__(self, pad: int = 4, flip: bool = True) -> None:
        self.pad = check_int("pad", pad, 0)
        self.flip = flip

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        offset_y = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator)
        offset_x = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator)
        flipped = torch.rand(n, generator=generator) < 0.5  # drawn even without flip, so the
        if not self.flip:  # stream (and the crops) do not depend on it
            flipped.zero_()
        return offset_y, offset_x, flipped

    def __call__(
        self, x: torch.Tensor, offset_y: torch.Tensor, offset_x: torch.Tensor, flipped: torch.Tensor
    ) -> torch.Tensor:
        """Per-image crop and flip; offsets (B,) in [0, 2*pad], flipped (B,) bool.

        Done as one gather of whole image rows (``index_select``), which is several times faster
        on a CPU than indexing every pixel: a row of the crop is a contiguous run of ``W``
        values in the padded image. A flipped image's rows come from a flipped copy of it,
        cropped at the mirrored offset ``2 * pad - offset_x``.
        """
        b, c, h, w = x.shape
        p = self.pad
        if b == 0:  # a rank's empty slice of a short last batch
            return x
        arange_b = torch.arange(b, device=x.device)
        if self.compact_flips(x):
            # Flipped copies of only the images that flip: less to write on a CPU.
            to_flip = flipped.nonzero().squeeze(1)
            source = arange_b.clone()
            source[to_flip] = b + torch.arange(len(to_flip), device=x.device)
        else:
            # On a GPU, nonzero() would make the host wait for the device to learn how many
            # flip (a sync per chunk): every image gets a flipped copy instead, a fixed shape,
            # and each reads from its own copy or its flipped one. Same output.
            to_flip = arange_b
            source = torch.where(flipped, arange_b + b, arange_b)
        # Sources: the B images, then flipped copies (of those that flip, or of all), all
        # zero-padded (written into a zeroed buffer: much faster than torch.cat + F.pad on
        # uint8 CPU data).
        hp, wp = h + 2 * p, w + 2 * p
        padded = x.new_zeros(b + len(to_flip), c, hp, wp)
        padded[:b, :, p : p + h, p : p + w] = x
        padded[b:, :, p : p + h, p : p + w] = x.index_select(0, to_flip).flip(-1)
        padded = padded.view(-1)
        # rows[k] is the run of w values starting at flat position k (a view, no copy).
        rows = padded.as_strided((padded.numel() - w + 1, w), (1, 1))
        left = torch.where(flipped, 2 * p - offset_x, offset_x)  # (B,) first column
        top = offset_y[:, None] + torch.arange(h, device=x.device)  # (B, H) rows read
        start = (
            (source * (c * hp * wp) + left)[:, None, None]
            + (torch.arange(c, device=x.device) * (hp * wp))[None, :, None]
            + (top * wp)[:, None, :]
        )  # (B, C, H): where each output row starts in ``padded``
        return rows.index_select(0, start.reshape(-1)).view(b, c, h, w)

    @staticmethod
    def compact_flips(x: torch.Tensor) -> bool:
        """Whether to copy only the images that flip (needs their count on the host: CPU)."""
        return x.device.type == "cpu"

    def __repr__(self) -> str:
        return f"RandomCropFlip(pad={self.pad}, flip={self.flip})"


class Cutout(BatchTransform):
    """Cutout (DeVries & Taylor 2017): one ``size`` x ``size`` square per image set to
    ``fill`` (0: the mean colour of normalised images, as in the paper's code). The square's
    centre is uniform over the image, so near a border only part of it falls inside."""

    def __init__(self, size: int, fill: float = 0.0) -> None:
        self.size = check_int("size", size, 1)
        self.fill = fill

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return (torch.rand(n, 2, generator=generator),)  # centre (y, x) as fractions of H, W

    def __call__(self, x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        cy = (centre[:, 0] * h).long()[:, None]  # (B, 1) in [0, H)
        cx = (centre[:, 1] * w).long()[:, None]
        half = self.size // 2
        ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
        inside_y = (ys >= cy - half) & (ys < cy - half + self.size)  # (B, H)
        inside_x = (xs >= cx - half) & (xs < cx - half + self.size)  # (B, W)
        mask = inside_y[:, :, None] & inside_x[:, None, :]  # (B, H, W)
        return x.masked_fill(mask[:, None], self.fill)

    def __repr__(self) -> str:
        return f"Cutout(size={self.size})"


class _Plain(BatchTransform):
    """A callable ``f(x)`` without random parameters."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.fn = fn

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def __repr__(self) -> str:
        return repr(self.fn)


def as_transform_list(transform: object) -> list[BatchTransform]:
    """Batch transforms in order, from one, a sequence of them, or plain callables ``f(x)``.

    Raises ValueError when a pixel transform follows one on normalised values.
    """
    items = list(transform) if isinstance(transform, (list, tuple)) else [transform]
    out = []
    for item in items:
        if isinstance(item, BatchTransform) or (hasattr(item, "sample") and callable(item)):
            out.append(item)  # duck-typed: sample(n, generator) and __call__(x, *params)
        elif callable(item):
            out.append(_Plain(item))
        else:
            raise TypeError(
                "transform must be a BatchTransform, a list of them or a callable f(x), got "
                f"{type(item).__name__}"
            )
    stages = [bool(getattr(t, "on_pixels", False)) for t in out]
    if stages != sorted(stages, reverse=True):
        raise ValueError(
            f"pixel transforms (on_pixels=True) must come before the others, got {out!r}"
        )
    return out
