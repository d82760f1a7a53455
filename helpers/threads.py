"""How many CPU threads torch uses: all the cores that are free when the course starts.

torch starts one intra-op thread per core, and every operator waits for its slowest thread.
When another program keeps one of the cores busy, the thread that shares it holds up the
others, and training slows down far more than the share of the CPU that was taken. On this
course's 2-core test machine (``benchmarks/threads.py --busy``, ResNet-20 training steps):

- idle: 2 threads ran 1.75x faster than 1;
- with one competing single-threaded job: 2 threads ran at 0.68x the speed of 1, and 1 thread
  lost nothing; on a machine that was busier still, 2 threads fell to 0.07x.

So where the course starts, the thread count is set to the cores that are idle right then
(measured over 0.1 s), at least 1 and at most torch's default: every notebook's banner
(``helpers.settings.print_banner``) and the command line (``python -m helpers.train``) call
:func:`ensure_threads`. ``import helpers`` alone changes nothing. An idle machine keeps every
core; a busy one gives way and slows down by about the share of the CPU it lost.

Override it with the environment variable ``COURSE_THREADS=N`` (a count, or ``auto``), e.g.
``COURSE_THREADS=2 jupyter lab``; ``OMP_NUM_THREADS`` set by you is respected as well; or call
``torch.set_num_threads(n)`` in a notebook after importing helpers.
"""

from __future__ import annotations

import math
import os
import time

import torch

THREADS_ENV = "COURSE_THREADS"

_choice: str | None = None  # how the thread count was chosen, for the banner; None: not yet


def busy_cores(interval: float = 0.1) -> float | None:
    """How many cores other programs keep busy, averaged over ``interval`` seconds.

    Read from Linux's /proc/stat; elsewhere the 1-minute load average (which also counts
    programs that have just finished); None where neither exists (Windows).
    """
    try:
        before = _cpu_times()
        time.sleep(interval)
        after = _cpu_times()
    except OSError:
        try:
            return float(os.getloadavg()[0])
        except (AttributeError, OSError):
            return None
    busy = after[0] - before[0]
    total = busy + after[1] - before[1]
    return (os.cpu_count() or 1) * busy / total if total > 0 else 0.0


def _cpu_times() -> tuple[int, int]:
    """(busy, idle) clock ticks of all cores since boot, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # guest time is already counted in user time
    return sum(fields[:8]) - idle, idle


def free_cores(cores: int, busy: float) -> int:
    """Threads to use on ``cores`` cores when ``busy`` of them are taken: at least 1.

    A core counts as taken once it is more than half busy, e.g. free_cores(2, 0.1) == 2,
    free_cores(2, 0.9) == 1, free_cores(8, 3.2) == 5.
    """
    return max(1, cores - math.floor(busy + 0.5))


def configure_threads() -> str:
    """Set torch's thread count as this module's docstring says; return how it was chosen.

    Raises ValueError for a ``COURSE_THREADS`` that is neither a positive count nor ``auto``.
    """
    global _choice
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw and raw != "auto":
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{THREADS_ENV} must be a thread count >= 1 or 'auto', got {raw!r}")
        torch.set_num_threads(int(raw))
        _choice = f"{THREADS_ENV}={raw}"
    elif not raw and os.environ.get("OMP_NUM_THREADS"):
        _choice = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    else:
        default = torch.get_num_threads()
        busy = busy_cores()
        if busy is not None:
            torch.set_num_threads(min(default, free_cores(os.cpu_count() or 1, busy)))
            _choice = (
                f"auto: {busy:.1f} of {os.cpu_count()} cores busy at start; "
                f"{THREADS_ENV}=N overrides"
            )
    return _choice


def ensure_threads() -> str:
    """Choose the thread count once per process (:func:`configure_threads`); later calls only
    return how it was chosen, so a notebook's banner can run twice without measuring again."""
    return _choice if _choice is not None else configure_threads()


def thread_choice() -> str:
    """How the current thread count was chosen (e.g. ``auto: 0.1 of 2 cores busy at start``)."""
    return _choice if _choice is not None else "torch's default (not chosen by the course)"
