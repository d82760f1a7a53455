"""Results of the prepared GPU run (``benchmarks/gpu_run.sh``), read back for notebook 08."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["gpu_results"]


def gpu_results(folder: str | Path) -> list[dict]:
    """The JSON records of ``benchmarks/gpu_run.sh`` in ``folder`` (results/gpu), name order;
    an empty list when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [
        {"file": p.name, **json.loads(p.read_text())}
        for p in sorted(folder.glob("*.json"))
        if not p.name.endswith(".history.json")
    ]
