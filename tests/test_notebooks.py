"""Course notebooks follow the conventions, and the bare `pytest` runs every one of them."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import COLLECTED_PATHS

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "tools"))
# nbformat comes with nbval and jupyter; the bare GPU machine has neither: skip, do not abort.
pytest.importorskip("nbformat")
import sync_notebooks  # noqa: E402


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_notebooks_numbered_from_00_without_gaps():
    numbers = [int(re.match(r"(\d\d)_", p.name).group(1)) for p in NOTEBOOKS]
    assert numbers, "no notebooks found"
    assert numbers == list(range(len(numbers))), [p.name for p in NOTEBOOKS]


def test_pytest_is_configured_to_run_the_notebooks_with_nbval():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "notebooks" in options["testpaths"]
    assert "--nbval-lax" in options["addopts"].split()


def test_every_notebook_is_in_this_run(pytestconfig):
    """A full run (bare `pytest`) must execute every notebook; a narrower run skips this check."""
    if pytestconfig.args_source != pytest.Config.ArgsSource.TESTPATHS:
        pytest.skip("only checked when pytest runs its configured testpaths (the README command)")
    collected = pytestconfig.stash[COLLECTED_PATHS]
    missing = [p.name for p in NOTEBOOKS if str(p) not in collected]
    assert not missing, f"notebooks not run by nbval: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_committed_errors(path):
    errors = [
        f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
        for i, cell in enumerate(load(path)["cells"])
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, errors


def test_all_notebooks_share_the_same_badge_and_install_cell():
    stale = sync_notebooks.main(["--check"])
    assert stale == 0, "run `python tools/sync_notebooks.py` (see the lines printed above)"
    installs = {source(load(path)["cells"][1]) for path in NOTEBOOKS}
    assert len(installs) == 1
    (install,) = installs
    assert sync_notebooks.repository_url() in install


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_reads_like_a_lecture(path):
    cells = load(path)["cells"]
    markdown = "\n".join(source(c) for c in cells if c["cell_type"] == "markdown")
    assert re.search(r"^# \d\d · ", markdown, re.M), "title '# NN · ...' missing"
    assert "What you will learn" in markdown
    assert "## Summary" in markdown
    assert "## Exercises" in markdown
    # The banner (mode, device, data source) is the first thing a notebook prints, at the top:
    # the code cells before it (imports, the one cell of mode-dependent sizes, loading the data
    # it names) print nothing. Its committed output shows it ran: outputs come from a real
    # top-to-bottom run.
    code_cells = [c for c in cells if c["cell_type"] == "code"][1:]  # after the install cell
    first = next((i for i, c in enumerate(code_cells) if "print_banner(" in source(c)), None)
    assert first is not None and first <= 2, "the banner must be printed at the top"
    assert not any(c.get("outputs") for c in code_cells[:first]), "output before the banner"
    banner_cell = code_cells[first]
    printed = "".join("".join(out.get("text", "")) for out in banner_cell.get("outputs", []))
    assert "mode        :" in printed, "no committed banner output: execute the notebook first"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_listed_in_the_readme(path):
    assert path.name in (ROOT / "README.md").read_text()
