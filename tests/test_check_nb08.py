"""The notebook 08 self-checks pass on right answers and fail on wrong ones."""

from __future__ import annotations

from helpers.check import FAIL, PASS, TODO, nb08


def right_pick(seconds, margin):
    best = min(seconds, key=seconds.get)
    return best if seconds[best] < seconds["fp32"] * (1 - margin) else "fp32"


def fastest_always(seconds, margin):
    return min(seconds, key=seconds.get)


def test_per_process_batch():
    assert nb08.per_process_batch(128).status == PASS
    assert nb08.per_process_batch(512).status == FAIL
    assert nb08.per_process_batch("128").status == FAIL
    assert nb08.per_process_batch(...).status == TODO


def test_scaled_lr():
    assert nb08.scaled_lr(0.8).status == PASS
    assert nb08.scaled_lr(0.1 * 1024 / 128).status == PASS
    assert nb08.scaled_lr(0.1 * (1024 / 128) ** 0.5).status == FAIL  # the square-root rule


def test_pick_precision():
    assert nb08.pick_precision(right_pick).status == PASS
    assert nb08.pick_precision(fastest_always).status == FAIL
    assert nb08.pick_precision(lambda s, m: "fp32").status == FAIL
    assert nb08.pick_precision("bf16").status == FAIL


def test_amdahl():
    assert nb08.amdahl(1 / (0.3 + 0.7 / 3)).status == PASS
    assert nb08.amdahl(1.88).status == PASS
    assert nb08.amdahl(3.0).status == FAIL
    assert nb08.amdahl(2.1).status == FAIL


def test_shared_core_speedup():
    assert nb08.shared_core_speedup(1.0).status == PASS
    assert nb08.shared_core_speedup(1).status == PASS
    assert nb08.shared_core_speedup(2.0).status == FAIL
    assert nb08.shared_core_speedup(1.5).status == FAIL
