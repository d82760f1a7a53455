"""Argument checks shared by the package: one error format for every bad value."""

from __future__ import annotations

import numpy as np


def check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` naming ``name`` if it is not one.

    Booleans are refused (``True`` is an int to Python, never a count to a user); numpy
    integers are accepted and converted.
    """
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)
