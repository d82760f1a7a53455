"""Context managers that switch a module's mode for a block and put it back afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode for the ``with`` block, then restore the mode it had.

    Eval mode makes BatchNorm use its running statistics (batch size 1 works, nothing is
    updated) and turns Dropout off.
    """
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
