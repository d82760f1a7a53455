"""Self-checks for the notebooks' exercises.

``helpers.check.core`` is the small framework (re-exported here); each notebook's exercise
checks live in a module named after it, e.g. ``from helpers.check import nb01``.
"""

from helpers.check.core import (
    FAIL,
    PASS,
    TODO,
    CheckFailed,
    CheckResult,
    exercise,
    expect,
    expect_close,
    expect_shape,
    how_far_off,
    value,
)

__all__ = [
    "FAIL",
    "PASS",
    "TODO",
    "CheckFailed",
    "CheckResult",
    "exercise",
    "expect",
    "expect_close",
    "expect_shape",
    "how_far_off",
    "value",
]
