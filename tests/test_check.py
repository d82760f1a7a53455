"""helpers.check: the exercise self-check framework prints PASS / FAIL / TODO and never raises."""

from __future__ import annotations

import torch

from helpers import check


@check.exercise("Doubling")
def check_doubling(fn):
    x = torch.arange(4.0)
    check.expect_close(fn(x), 2 * x, "fn(x)")
    return "doubles its input"


def test_right_answer_passes(capsys):
    result = check_doubling(lambda x: x * 2)
    assert result.passed and bool(result)
    assert capsys.readouterr().out.strip() == "✅ PASS  Doubling: doubles its input"


def test_wrong_answer_fails_with_the_reason(capsys):
    result = check_doubling(lambda x: x * 3)
    assert result.status == check.FAIL and not result
    assert "fn(x) differs from the reference (max abs diff 3)" in capsys.readouterr().out


def test_wrong_shape_is_named():
    result = check_doubling(lambda x: x[:2] * 2)
    assert result.message == "fn(x) shape (2,), expected (4,)"


def test_placeholders_count_as_not_attempted():
    def unsolved(x):
        raise NotImplementedError

    assert check_doubling(...).status == check.TODO
    assert check_doubling(None).status == check.TODO
    assert check_doubling(unsolved).status == check.TODO


def test_a_crash_in_learner_code_is_reported_not_raised():
    result = check_doubling(lambda x: x @ "oops")
    assert result.status == check.FAIL
    assert result.message.startswith("your code raised TypeError")


def test_value_check():
    assert check.value("count", 269_722, 269_722).passed
    failed = check.value("count", 269_000, 269_722)
    # The failure says which way and roughly how far, never the answer itself.
    assert failed.message == "your answer is 269,000: too low by less than 1 %"
    assert "269,722" not in failed.message
    assert check.value("count", 300_000, 269_722).message.endswith("too high by 10-50 %")
    assert check.value("count", 1, 269_722).message.endswith("too low by more than 50 %")
    assert check.value("count", "269722", 269_722).status == check.FAIL
    assert check.value("count", ..., 269_722).status == check.TODO
