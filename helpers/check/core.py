"""The self-check framework: run a learner's answer against a reference, print PASS/FAIL/TODO.

An exercise check runs a learner's answer against a reference and prints one clear line:

    ✅ PASS  Residual block: output matches helpers.models.BasicBlock (max diff 0.0)
    ❌ FAIL  Residual block: output shape (2, 16, 8, 8), expected (2, 32, 8, 8)
    ⏳ TODO  Residual block: not attempted yet (the answer still raises NotImplementedError)

Writing a check is writing a function that raises :class:`CheckFailed` (through the
``expect*`` helpers) when the answer is wrong and returns a short success message when it is
right, decorated with :func:`exercise`. Each notebook's checks live in their own module of this
package (``helpers.check.nb01`` ...); tests run each on a right and a wrong answer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

PASS, FAIL, TODO = "PASS", "FAIL", "TODO"
_ICONS = {PASS: "✅", FAIL: "❌", TODO: "⏳"}


class CheckFailed(AssertionError):
    """Raised inside a check when the learner's answer is wrong; the message is the reason."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check. Truthy only when it passed."""

    name: str
    status: str  # PASS, FAIL or TODO
    message: str

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __bool__(self) -> bool:
        return self.passed

    def line(self) -> str:
        return f"{_ICONS[self.status]} {self.status}  {self.name}: {self.message}"

    def __str__(self) -> str:
        return self.line()

    def _ipython_display_(self) -> None:
        # The check already printed its line; showing the return value again would repeat it.
        pass


def _not_attempted(answer: Any) -> bool:
    return answer is Ellipsis or answer is None


def exercise(name: str) -> Callable[[Callable[..., str]], Callable[..., CheckResult]]:
    """Turn a checking function into a self-check that prints PASS/FAIL/TODO and never raises.

    The wrapped function gets the learner's answer(s); it raises :class:`CheckFailed` with the
    reason when an answer is wrong and returns a success message otherwise. An answer that is
    ``...`` or ``None``, or code that raises ``NotImplementedError``, counts as not attempted.
    Any other exception in the learner's code is reported as a failure with its type and text.
    """

    def decorate(check_fn: Callable[..., str]) -> Callable[..., CheckResult]:
        @functools.wraps(check_fn)
        def run(*answers: Any, **options: Any) -> CheckResult:
            if not answers or any(_not_attempted(a) for a in answers):
                result = CheckResult(name, TODO, "not attempted yet (replace the `...` above)")
            else:
                try:
                    result = CheckResult(name, PASS, check_fn(*answers, **options))
                except NotImplementedError:
                    reason = "not attempted yet (the answer still raises NotImplementedError)"
                    result = CheckResult(name, TODO, reason)
                except CheckFailed as failure:
                    result = CheckResult(name, FAIL, str(failure))
                except Exception as error:  # the learner's code crashed: say how, don't raise
                    result = CheckResult(
                        name, FAIL, f"your code raised {type(error).__name__}: {error}"
                    )
            print(result.line())
            return result

        return run

    return decorate


# ---------------------------------------------------------------- building blocks for checks


def expect(condition: bool, reason: str) -> None:
    """Fail the check with ``reason`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(reason)


def expect_shape(tensor: Any, shape: tuple[int, ...], what: str = "output") -> None:
    """Fail unless ``tensor`` is a tensor of exactly ``shape``."""
    expect(
        isinstance(tensor, torch.Tensor),
        f"{what} should be a torch.Tensor, got {type(tensor).__name__}",
    )
    expect(
        tuple(tensor.shape) == tuple(shape),
        f"{what} shape {tuple(tensor.shape)}, expected {tuple(shape)}",
    )


def expect_close(
    actual: Any, expected: Any, what: str = "value", *, rtol: float = 1e-5, atol: float = 1e-6
) -> float:
    """Fail unless ``actual`` matches ``expected`` (numbers or tensors); returns max abs diff."""
    if isinstance(expected, torch.Tensor):
        expect(
            isinstance(actual, torch.Tensor),
            f"{what} should be a torch.Tensor, got {type(actual).__name__}",
        )
        expect_shape(actual, tuple(expected.shape), what)
        actual_f, expected_f = actual.detach().double(), expected.detach().double()
        diff = (actual_f - expected_f).abs().max().item() if expected.numel() else 0.0
        expect(
            torch.allclose(actual_f, expected_f, rtol=rtol, atol=atol),
            f"{what} differs from the reference (max abs diff {diff:.3g})",
        )
        return diff
    expect(
        isinstance(actual, int | float) and not isinstance(actual, bool),
        f"{what} should be a number, got {type(actual).__name__} {actual!r}",
    )
    expect(
        math.isclose(actual, expected, rel_tol=rtol, abs_tol=atol),
        f"{what} is {actual:,}: {how_far_off(actual, expected)}",
    )
    return abs(actual - expected)


def how_far_off(actual: float, expected: float) -> str:
    """Which way and roughly how far a wrong number is off, without giving the answer away.

    A failure message that prints the expected value teaches nothing: the learner copies it.
    The direction and a coarse band ("too low by 1-10 %") say where to look instead.
    """
    direction = "too high" if actual > expected else "too low"
    if expected == 0:
        return f"{direction} (the answer is not {actual:,})"
    off = abs(actual - expected) / abs(expected)
    for limit, band in ((0.01, "less than 1 %"), (0.1, "1-10 %"), (0.5, "10-50 %")):
        if off < limit:
            return f"{direction} by {band}"
    return f"{direction} by more than 50 %"


# ---------------------------------------------------------------- generic checks


def value(
    name: str, answer: Any, expected: float, *, rtol: float = 1e-9, atol: float = 0.0
) -> CheckResult:
    """Check a numeric answer (e.g. "how many parameters does this layer have?")."""

    @exercise(name)
    def _check(given: Any) -> str:
        expect_close(given, expected, "your answer", rtol=rtol, atol=atol)
        return f"{given:,} is right"

    return _check(answer)
