"""helpers.settings: the mode switch, device choice, seeding, data root and the banner."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from helpers import settings


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("0", False), (" 1 ", True)])
def test_course_quick_forces_the_mode(monkeypatch, raw, expected):
    monkeypatch.setenv("COURSE_QUICK", raw)
    assert settings.quick_mode() is expected


def test_unset_course_quick_follows_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert settings.quick_mode() is True
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert settings.quick_mode() is False


@pytest.mark.parametrize("raw", ["yes", "true", "2", "quick"])
def test_invalid_course_quick_is_a_clear_error(monkeypatch, raw):
    monkeypatch.setenv("COURSE_QUICK", raw)
    with pytest.raises(ValueError, match=f"COURSE_QUICK must be '1'.*got '{raw}'"):
        settings.quick_mode()


def test_device_defaults_to_cpu_without_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert settings.device() == torch.device("cpu")


def test_device_override_is_checked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert settings.device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        settings.device()
    monkeypatch.setenv("COURSE_DEVICE", "not-a-device")
    with pytest.raises(ValueError, match="not a valid torch device"):
        settings.device()


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)  # noqa: NPY002 (the global RNG)

    settings.seed_everything(123)
    first = draw()
    settings.seed_everything(123)
    second = draw()
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])
    settings.seed_everything(124)
    assert not torch.equal(draw()[2], first[2])


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        settings.seed_everything(seed)


def test_data_root_override(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    assert settings.data_root() == tmp_path
    monkeypatch.delenv("COURSE_DATA")
    assert settings.data_root().name == "data"


def test_banner_names_mode_device_versions_and_data(monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    text = settings.banner("shapes (offline)")
    assert "QUICK" in text and "not results" in text
    assert "cpu" in text
    assert torch.__version__ in text
    assert "data source : shapes (offline)" in text
    monkeypatch.setenv("COURSE_QUICK", "0")
    assert "FULL" in settings.banner()


def test_offline_switch(monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert settings.offline() is True
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    assert settings.offline() is False
    monkeypatch.delenv("COURSE_OFFLINE")
    assert settings.offline() is False
    monkeypatch.setenv("COURSE_OFFLINE", "yes")
    with pytest.raises(ValueError, match="COURSE_OFFLINE must be '1'"):
        settings.offline()
