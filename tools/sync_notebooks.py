"""Keep every course notebook's first two cells identical: the Colab badge and the install cell.

The repository URL is read from pyproject.toml ([project.urls] Repository), the one place it is
written. Run after adding a notebook or changing the URL:

    python tools/sync_notebooks.py          # rewrite the first two cells where they differ
    python tools/sync_notebooks.py --check  # exit 1 if any notebook is out of date (tests use it)

A notebook without the cells gets them inserted at the top.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
BADGE_MARKER = "colab-badge.svg"
INSTALL_MARKER = "# Colab set-up"


def repository_url() -> str:
    """The repository URL from pyproject.toml, without a trailing slash or '.git'."""
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        url = tomllib.load(f)["project"]["urls"]["Repository"]
    return url.rstrip("/").removesuffix(".git")


def badge_source(notebook_name: str, url: str) -> str:
    """Markdown of the 'Open in Colab' badge for one notebook."""
    github_path = url.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{github_path}/blob/main/notebooks/{notebook_name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab})"


def install_source(url: str) -> str:
    """The install cell: on Colab it pip-installs the course package; elsewhere it does nothing."""
    return (
        f"{INSTALL_MARKER}: installs the course's `helpers` package. Does nothing outside Colab.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        f'    package = "hands-on-resnet @ git+{url}"\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)'
    )


def expected_head(notebook_name: str, url: str) -> list[nbformat.NotebookNode]:
    """The two cells every notebook starts with."""
    return [
        nbformat.v4.new_markdown_cell(badge_source(notebook_name, url)),
        nbformat.v4.new_code_cell(install_source(url)),
    ]


def has_head(nb: nbformat.NotebookNode) -> bool:
    """Whether the notebook already starts with a badge cell and an install cell (any version)."""
    cells = nb.cells
    return (
        len(cells) >= 2
        and cells[0].cell_type == "markdown"
        and BADGE_MARKER in cells[0].source
        and cells[1].cell_type == "code"
        and cells[1].source.startswith(INSTALL_MARKER)
    )


def head_is_current(nb: nbformat.NotebookNode, notebook_name: str, url: str) -> bool:
    """Whether the first two cells are exactly the canonical ones."""
    if not has_head(nb):
        return False
    expected = expected_head(notebook_name, url)
    return all(nb.cells[i].source == expected[i].source for i in range(2))


def sync(path: Path, url: str) -> bool:
    """Bring one notebook's head up to date; returns True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    if head_is_current(nb, path.name, url):
        return False
    head = expected_head(path.name, url)
    if has_head(nb):
        nb.cells[0].source = head[0].source
        nb.cells[1].source = head[1].source
    else:
        nb.cells[:0] = head
    nbformat.write(nb, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report out-of-date notebooks")
    args = parser.parse_args(argv)
    url = repository_url()
    stale = []
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if head_is_current(nb, path.name, url):
            continue
        stale.append(path.name)
        if not args.check:
            sync(path, url)
    verb = "out of date" if args.check else "updated"
    for name in stale:
        print(f"{verb}: {name}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
