"""Laptop mode's code path, at toy size, so it cannot rot while CI runs quick mode.

A generated ImageFolder stands in for CIFAR-10 in a temporary data root (``COURSE_DATA``), and
``COURSE_SIZE=toy`` gives laptop mode quick mode's sizes; each notebook then runs top to
bottom under nbval, through the same cells the committed laptop-mode run went through. Its
``# NBVAL_CHECK_OUTPUT`` cells must print what the committed notebook printed, so they are
mode-independent too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.data import CIFAR10_CLASSES

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["00_setup.ipynb", "01_residual_blocks.ipynb", "02_resnet34.ipynb", "03_resnet50.ipynb"]


@pytest.fixture(scope="module")
def toy_cifar10(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding ``cifar10/train/<class>/`` with 200 random 32x32 PNGs per class
    (enough for every notebook's quick-mode split sizes)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for name in CIFAR10_CLASSES:
        folder = root / "cifar10" / "train" / name
        folder.mkdir(parents=True)
        for i in range(200):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_in_laptop_mode_at_toy_size(notebook, toy_cifar10, tmp_path):
    env = {
        **os.environ,
        "COURSE_MODE": "laptop",
        "COURSE_SIZE": "toy",
        "COURSE_DATA": str(toy_cifar10),
        "COURSE_RESULTS": str(tmp_path / "results"),
        "COURSE_OFFLINE": "1",
        "COURSE_THREADS": "1",
    }
    env.pop("COURSE_QUICK", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--nbval-lax", "--nbval-current-env", str(REPO / "notebooks" / notebook)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert not (tmp_path / "results").exists()  # toy runs write no results
