"""The notebook 07 self-checks pass on right answers and fail on wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytorch_grad_cam")  # nb07's checks compare with helpers.cam, built on it

from helpers.check import FAIL, PASS, TODO, nb07


def test_cam_weights() -> None:
    assert nb07.cam_weights(lambda g: g.mean(dim=(2, 3))).status == PASS
    assert nb07.cam_weights(lambda g: g.sum(dim=(2, 3))).status == FAIL
    assert nb07.cam_weights(lambda g: g.mean(dim=(1, 2))).status == FAIL  # wrong axes
    assert nb07.cam_weights(None).status == TODO


def right_energy(cam: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    return float(cam[y0 : y1 + 1, x0 : x1 + 1].sum() / cam.sum())


def test_energy_in_box() -> None:
    assert nb07.energy_in_box(right_energy).status == PASS

    def exclusive(cam, box):
        x0, y0, x1, y1 = box
        return float(cam[y0:y1, x0:x1].sum() / cam.sum())

    def transposed(cam, box):
        x0, y0, x1, y1 = box
        return float(cam[x0 : x1 + 1, y0 : y1 + 1].sum() / cam.sum())

    result = nb07.energy_in_box(exclusive)
    assert result.status == FAIL and "inside the box" in result.message
    assert nb07.energy_in_box(transposed).status == FAIL


def test_scorecam_passes() -> None:
    assert nb07.scorecam_passes(2048).status == PASS
    assert nb07.scorecam_passes(512).status == FAIL
    assert nb07.scorecam_passes(...).status == TODO
