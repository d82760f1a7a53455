"""What every benchmark shares: interleaved timing, and a description of the machine.

Timings on a shared or busy machine drift with the other processes' load. Contenders are
therefore timed side by side: every repeat runs each of them once, in alternating order, and
the median over repeats is reported. A ratio of two such medians is trustworthy even where
the absolute times are inflated by load; the absolute times are not.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping

import torch

from helpers.timing import median_step_times


def race(
    contenders: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    dev: torch.device | None = None,
) -> dict[str, float]:
    """Median seconds per call of each contender; calls interleaved, order alternating."""
    return median_step_times(contenders, dev or torch.device("cpu"), repeats=repeats, warmup=warmup)


def load_average() -> str:
    """'load average 1.0, 0.9, 0.8 on 2 cores' (1, 5, 15 minutes), or 'n/a'."""
    if not hasattr(os, "getloadavg"):
        return "n/a"
    values = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"load average {values} on {os.cpu_count()} cores"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_bf16_flags() -> str:
    """The CPU's bf16 features as torch sees them (AVX512-BF16, AMX-BF16) and its kernel ISA."""
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    flags = [name for name in ("avx512_bf16", "amx_bf16", "amx_tile") if caps.get(name)]
    isa = torch.backends.cpu.get_cpu_capability()
    return f"{', '.join(flags) or 'no native bf16'}; torch kernels: {isa}"


def machine_lines() -> list[str]:
    """Lines describing machine, software and load, for the head of a report."""
    import torchvision

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} logical cores ({cpu_bf16_flags()}); GPU: {gpu}",
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}",
        f"{load_average()}",
    ]


def machine_record() -> dict[str, object]:
    """The same facts as a dict, for JSON results."""
    import torchvision

    record: dict[str, object] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_bf16": cpu_bf16_flags(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if torch.cuda.is_available():
        record["gpu"] = torch.cuda.get_device_name()
        record["cuda"] = torch.version.cuda
    return record
