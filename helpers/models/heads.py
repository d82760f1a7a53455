"""Classifier heads: what turns the pooled features into logits (the module a ResNet calls ``fc``).

Transfer learning swaps only this module (:meth:`helpers.models.ResNet.reset_classifier`).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from helpers.validate import check_int


def check_dropout(dropout: Any) -> float:
    """Return ``dropout`` if it is a probability in [0, 1), else raise a ValueError."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    return float(dropout)


def make_head(
    num_features: int, num_classes: int, hidden: int | None = None, dropout: float = 0.0
) -> nn.Module:
    """A classifier on pooled features: (N, num_features) -> logits (N, num_classes).

    - ``hidden=None, dropout=0``: ``nn.Linear(num_features, num_classes)`` (torchvision's fc).
    - ``hidden=None, dropout=p``: ``Sequential(Dropout(p), Linear)``.
    - ``hidden=h``: ``Sequential(Linear(num_features, h), ReLU, Dropout(p), Linear(h,
      num_classes))``, the head of TA-ResNet50 with ``h=512, p=0.5`` (the Dropout is there
      even at ``p=0``, so the keys do not depend on ``dropout``).
    The input of the last ``Linear`` is what ``forward_head(x, pre_logits=True)`` returns.
    The hidden layer's activation is ReLU whatever the network's ``act`` (the TA-ResNet50 head).
    """
    check_int("num_features", num_features, 1)
    check_int("num_classes", num_classes, 1)
    dropout = check_dropout(dropout)
    if hidden is None:
        classifier = nn.Linear(num_features, num_classes)
        return classifier if dropout == 0 else nn.Sequential(nn.Dropout(dropout), classifier)
    check_int("head_hidden", hidden, 1)
    return nn.Sequential(
        nn.Linear(num_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )
