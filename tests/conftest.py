"""Shared pytest set-up: quick mode for notebooks, a headless matplotlib, GPU-test skipping."""

from __future__ import annotations

import os

import matplotlib
import pytest
import torch

# Tests run the course in quick mode unless the caller chose (COURSE_MODE=laptop runs the
# notebooks' laptop experiments). Notebook kernels inherit this environment.
if not os.environ.get("COURSE_MODE") and not os.environ.get("COURSE_QUICK"):
    os.environ["COURSE_MODE"] = "quick"
# No network at test time: datasets that are not on disk are not downloaded (quick mode then
# falls back to an offline set, as it would on an offline laptop).
os.environ.setdefault("COURSE_OFFLINE", "1")
matplotlib.use("Agg")  # this process only; notebook kernels keep their inline backend
# The helper tests use tiny tensors, where a second thread costs more in hand-off than it saves
# (measured 3-6x slower on a busy 2-core machine). Notebook kernels are separate processes,
# which choose their own count in their banner (helpers/threads.py).
torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Remember what was collected, so tests/test_notebooks.py can check no notebook is left out.
    config.stash[COLLECTED_PATHS] = {str(item.path) for item in items}
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


COLLECTED_PATHS = pytest.StashKey[set]()
