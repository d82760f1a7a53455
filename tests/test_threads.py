"""The default thread count: every idle core, at least one (helpers/threads.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from helpers import settings, threads


@pytest.fixture
def keep_threads():
    """Restore torch's thread count and the recorded choice after the test."""
    before, choice = torch.get_num_threads(), threads.thread_choice()
    yield
    torch.set_num_threads(before)
    threads._choice = choice


@pytest.mark.parametrize(
    "cores, busy, expected",
    [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 3.5, 1), (8, 3.2, 5), (1, 0.0, 1)],
)
def test_free_cores_counts_cores_more_than_half_idle(cores, busy, expected):
    assert threads.free_cores(cores, busy) == expected


def test_busy_cores_is_a_share_of_the_machine():
    busy = threads.busy_cores(interval=0.05)
    if busy is None:
        pytest.skip("no load information on this platform")
    assert 0.0 <= busy <= (os.cpu_count() or 1) + 1e-6


def test_course_threads_sets_the_count_and_the_banner_says_so(monkeypatch, keep_threads):
    monkeypatch.setenv("COURSE_THREADS", "1")
    assert threads.configure_threads() == "COURSE_THREADS=1"
    assert torch.get_num_threads() == 1
    assert "threads     : 1 (COURSE_THREADS=1)" in settings.banner()


def test_auto_never_exceeds_torch_default(monkeypatch, keep_threads):
    monkeypatch.setenv("COURSE_THREADS", "auto")
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    torch.set_num_threads(1)  # torch's count before the choice is the ceiling
    assert threads.configure_threads().startswith("auto: 0.0 of")
    assert torch.get_num_threads() == 1


def test_auto_gives_way_to_a_busy_core(monkeypatch, keep_threads):
    monkeypatch.delenv("COURSE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "busy_cores", lambda: float(os.cpu_count() or 1))
    threads.configure_threads()
    assert torch.get_num_threads() == 1


def test_omp_num_threads_is_respected(monkeypatch, keep_threads):
    monkeypatch.delenv("COURSE_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(threads, "busy_cores", lambda: pytest.fail("must not measure"))
    assert threads.configure_threads() == "OMP_NUM_THREADS=1"


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_bad_course_threads_is_named(monkeypatch, keep_threads, value):
    monkeypatch.setenv("COURSE_THREADS", value)
    with pytest.raises(ValueError, match="COURSE_THREADS must be a thread count >= 1 or 'auto'"):
        threads.configure_threads()


def test_import_helpers_changes_nothing():
    """``import helpers`` neither measures nor sets the thread count (no import side effects)."""
    code = (
        "import torch; before = torch.get_num_threads(); import time; t = time.perf_counter(); "
        "import helpers, helpers.settings, helpers.threads; "
        "print(before == torch.get_num_threads(), helpers.threads._choice is None)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split() == ["True", "True"]


def test_banner_chooses_the_threads_once(monkeypatch, keep_threads, capsys):
    monkeypatch.setenv("COURSE_THREADS", "1")
    threads._choice = None
    settings.print_banner()
    assert "threads     : 1 (COURSE_THREADS=1)" in capsys.readouterr().out
    monkeypatch.setenv("COURSE_THREADS", "2")  # a second banner does not choose again
    assert threads.ensure_threads() == "COURSE_THREADS=1"
    assert torch.get_num_threads() == 1
