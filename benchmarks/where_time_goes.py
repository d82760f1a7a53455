"""Where a notebook's run time goes: its slowest cells, from the committed execution record.

Jupyter (nbclient) records when each code cell started and finished
(``cell.metadata.execution``); the committed notebooks keep that record of the run that made
their outputs. This prints, per notebook, the sum of the cell times and the slowest cells with
the heading of the section they sit in. It reads files only; it runs nothing.

    python benchmarks/where_time_goes.py [--top 3] [notebooks/*.ipynb ...]
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cell_seconds(cell: dict) -> float | None:
    """Seconds from a code cell's execute_input to its execute_reply, or None if not recorded."""
    times = cell.get("metadata", {}).get("execution", {})
    start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
    if not (start and end):
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def timed_cells(path: Path) -> list[tuple[float, str, str]]:
    """(seconds, section heading, first line) of every code cell with an execution record."""
    cells = json.loads(path.read_text())["cells"]
    heading, out = "(top)", []
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith("#"):
            heading = source.splitlines()[0].lstrip("# ").strip()
        elif cell["cell_type"] == "code" and (seconds := cell_seconds(cell)) is not None:
            out.append((seconds, heading, source.splitlines()[0] if source else ""))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--top", type=int, default=3, help="slowest cells shown per notebook")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    print("| notebook | cells (s) | slowest cells: seconds, section, first line |")
    print("|---|---:|---|")
    for path in paths:
        cells = timed_cells(path)
        if not cells:
            print(f"| {path.name} | - | no execution record |")
            continue
        slowest = sorted(cells, reverse=True)[: args.top]
        where = "; ".join(f"{s:.1f} s, {h[:40]}, `{line[:40]}`" for s, h, line in slowest)
        print(f"| {path.name} | {sum(s for s, _, _ in cells):.1f} | {where} |")


if __name__ == "__main__":
    main()
