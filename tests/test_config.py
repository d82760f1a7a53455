"""helpers.settings: the mode switch, device choice, seeding, data root and the banner."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from helpers import settings


@pytest.fixture
def no_mode_variables(monkeypatch):
    monkeypatch.delenv("COURSE_MODE", raising=False)
    monkeypatch.delenv("COURSE_QUICK", raising=False)


@pytest.mark.parametrize(("raw", "expected"), [("1", "quick"), ("0", "full"), (" 1 ", "quick")])
def test_course_quick_still_means_quick_or_full(monkeypatch, no_mode_variables, raw, expected):
    monkeypatch.setenv("COURSE_QUICK", raw)
    assert settings.mode() == expected
    assert settings.quick_mode() is (expected == "quick")


@pytest.mark.parametrize("raw", ["quick", "laptop", "full", " Laptop "])
def test_course_mode_chooses_each_mode(monkeypatch, no_mode_variables, raw):
    monkeypatch.setenv("COURSE_MODE", raw)
    assert settings.mode() == raw.strip().lower()
    assert settings.mode_and_reason()[1] == f"COURSE_MODE={raw.strip()}"
    assert (
        settings.by_mode(quick=1, laptop=2, full=3)
        == {"quick": 1, "laptop": 2, "full": 3}[raw.strip().lower()]
    )


def test_unset_mode_is_laptop_with_cuda_and_quick_without(monkeypatch, no_mode_variables):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert settings.mode_and_reason() == ("quick", "the default without CUDA")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    mode, reason = settings.mode_and_reason()
    assert mode == "laptop" and "full mode takes hours" in reason


@pytest.mark.parametrize("raw", ["yes", "true", "2", "quick"])
def test_invalid_course_quick_is_a_clear_error(monkeypatch, no_mode_variables, raw):
    monkeypatch.setenv("COURSE_QUICK", raw)
    with pytest.raises(ValueError, match=f"COURSE_QUICK must be '1'.*got '{raw}'"):
        settings.quick_mode()


@pytest.mark.parametrize("raw", ["fast", "1", "laptop-mode"])
def test_unknown_course_mode_lists_the_valid_ones(monkeypatch, no_mode_variables, raw):
    monkeypatch.setenv("COURSE_MODE", raw)
    with pytest.raises(
        ValueError, match=f"COURSE_MODE must be one of quick, laptop, full, got '{raw}'"
    ):
        settings.mode()


def test_contradicting_mode_variables_are_an_error(monkeypatch, no_mode_variables):
    monkeypatch.setenv("COURSE_MODE", "laptop")
    monkeypatch.setenv("COURSE_QUICK", "1")
    with pytest.raises(ValueError, match="contradict each other"):
        settings.mode()
    monkeypatch.setenv("COURSE_QUICK", "0")
    with pytest.raises(ValueError, match="contradict each other"):
        settings.mode()
    monkeypatch.setenv("COURSE_MODE", "full")
    assert settings.mode() == "full"  # agreeing variables are fine


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


def test_banner_names_mode_why_how_to_switch_device_versions_and_data(
    monkeypatch, no_mode_variables
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    text = settings.banner("shapes (offline)")
    assert "mode        : quick (smoke test on tiny data: numbers are not results)" in text
    assert "chosen by the default without CUDA; switch with COURSE_MODE=quick|laptop|full" in text
    assert "cpu" in text
    assert torch.__version__ in text
    assert "data source : shapes (offline)" in text
    monkeypatch.setenv("COURSE_MODE", "laptop")
    assert "mode        : laptop (real data, small networks" in settings.banner()
    monkeypatch.setenv("COURSE_MODE", "full")
    assert "chosen by COURSE_MODE=full" in settings.banner()


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


def test_the_banner_names_the_cpu_and_its_bf16_support(monkeypatch):
    monkeypatch.setattr(
        torch.cpu, "get_capabilities", lambda: {"cpu_name": "Some CPU", "avx512_bf16": True}
    )
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    described = settings.describe_device(torch.device("cpu"))
    assert "Some CPU, AVX512-BF16, torch kernels " in described
    assert described.endswith("oneDNN limited to AVX2)")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"cpu_name": "Old CPU"})
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert "Old CPU, no bf16 instructions, torch kernels" in settings.describe_cpu()
