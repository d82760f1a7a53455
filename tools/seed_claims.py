"""Write the README's seed-claims table from the committed results files.

    python tools/seed_claims.py           # rewrite the table in README.md
    python tools/seed_claims.py --check   # exit 1 if README.md's table is not what it generates

A row whose claim a laptop-mode run measured is generated from that run's record
(``results/laptop/<name>.json``, written by the notebook), so the README cannot quote numbers
the notebook did not print. Rows that state exact facts (an architecture, a parameter count:
the tests and the notebooks' ``# NBVAL_CHECK_OUTPUT`` cells check them) and rows not yet
measured in laptop mode are kept here as text, with the mode they come from.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import mean
from typing import Any

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- seed-claims: start (tools/seed_claims.py) -->", "<!-- seed-claims: end -->"
HEADER = "| claim | paper | what we measured | mode | verdict |\n| --- | --- | --- | --- | --- |"

RESNET34_PAPER = "ResNet34 reproduction and improvement"
RESNET50_PAPER = "Brief Analysis of ResNet50"
IMPROVED_PAPER = "Image classification algorithm based on improved ResNet50"
TRANSFER_PAPER = "Research on Application of Improved ResNet Network Based on Transfer Learning"


def _runs(record: dict[str, Any], column: str) -> dict[str, dict[int, float]]:
    """{model: {seed: value}} from a record's ``final`` rows."""
    runs: dict[str, dict[int, float]] = {}
    for row in record["final"]:
        runs.setdefault(row["model"], {})[int(row["seed"])] = float(row[column])
    return runs


def _per_seed(values: dict[int, float]) -> str:
    return " / ".join(f"{values[s]:.1f}" for s in sorted(values))


def _count(deeper: dict[int, float], shallower: dict[int, float], worse: bool) -> int:
    seeds = sorted(set(deeper) & set(shallower))
    return sum((deeper[s] > shallower[s]) == worse for s in seeds)


def degradation_row(record: dict[str, Any]) -> tuple[str, str, str]:
    """(what we measured, mode, verdict) of the degradation claim, from nb01's record."""
    err = _runs(record, "train_err")
    seeds = sorted(next(iter(err.values())))
    names = {"plain20": "plain-20", "plain56": "plain-56", "resnet20": "ResNet-20",
             "resnet56": "ResNet-56"}  # fmt: skip
    values = ", ".join(f"{label} {_per_seed(err[key])} %" for key, label in names.items())
    plain_worse = _count(err["plain56"], err["plain20"], worse=True)
    residual_ok = _count(err["resnet56"], err["resnet20"], worse=False)
    n = len(seeds)
    measured = (
        f"notebook 01: final training error after {record['epochs']} epochs on "
        f"{record['train_images']:,} CIFAR-10 training images, seeds "
        f"{' / '.join(map(str, seeds))}: {values}; plain-56 minus plain-20 "
        f"{mean(err['plain56'][s] - err['plain20'][s] for s in seeds):+.1f} points, ResNet-56 "
        f"minus ResNet-20 {mean(err['resnet56'][s] - err['resnet20'][s] for s in seeds):+.1f}"
    )
    verdict = (
        f"the deeper plain net trained worse in {plain_worse} of {n} seeds; the deeper residual "
        f"net trained at least as well in {residual_ok} of {n} (a short run: He et al.'s depth "
        "gain needs their 64k iterations)"
    )
    return measured, f"laptop ({record['date']})", verdict


def ablation_row(record: dict[str, Any]) -> tuple[str, str, str]:
    """(what we measured, mode, verdict) of the ResNet34 modifications, from nb02's record."""
    err = _runs(record, "test_err")
    base_name = next(name for name in err if name.startswith("baseline"))
    base = err[base_name]
    effects: dict[str, float] = {}
    parts = []
    for name, values in err.items():
        if name == base_name:
            continue
        seeds = sorted(set(values) & set(base))
        diffs = [values[s] - base[s] for s in seeds]
        effects[name] = mean(diffs)
        per_seed = " / ".join(f"{d:+.1f}" for d in diffs)
        parts.append(f"{name} {effects[name]:+.1f} (per seed {per_seed})")
    spread = max(max(v.values()) - min(v.values()) for v in err.values())
    sizes = re.search(r"(\d+)/(\d+)/(\d+) train/val/test", record["dataset"])
    images = (
        f"{int(sizes[1]):,} training and {int(sizes[3]):,} test images" if sizes else "CIFAR-10"
    )
    measured = (
        f"notebook 02: {record['width']:g}-wide ResNet34 (CIFAR stem), {record['epochs']} epochs "
        f"on {images} of CIFAR-10, seeds {' / '.join(map(str, record['seeds']))}: test error "
        f"of the baseline {_per_seed(base)} %; change in points against it: {'; '.join(parts)}; "
        f"the largest seed-to-seed range of any variant: {spread:.1f} points"
    )
    beyond = [f"{name} ({effects[name]:+.1f})" for name in effects if abs(effects[name]) > spread]
    verdict = (
        f"{len(beyond)} of {len(effects)} changes moved the mean test error by more than the "
        f"largest seed range{': ' + ', '.join(beyond) if beyond else ''}; at this scale (nets far "
        "from trained) the paper's claim is not tested"
    )
    return measured, f"laptop ({record['date']})", verdict


# (claim, paper, record name or None, generator or (measured, mode, verdict) text)
Row = tuple[str, str, str | None, Callable[[dict], tuple[str, str, str]] | tuple[str, str, str]]
ROWS: list[Row] = [
    (
        "ResNet34 is BasicBlock stages [3, 4, 6, 3] with global average pooling before the "
        "classifier", RESNET34_PAPER, None,
        ("`helpers.models.resnet34` loads torchvision's state dict with `strict=True` and gives "
         "the same outputs (notebook 02)", "any (exact)", "held"),
    ),
    (
        'ResNet34 has "a 1x1 convolution before the final fully connected layer"',
        RESNET34_PAPER, None,
        ("torchvision's ResNet34 has only the global average pool between `layer4` and `fc`; "
         "its only 1x1 convolutions are the three projection shortcuts (notebook 02)",
         "any (exact)",
         "did not hold (true of ResNet50's bottlenecks, not of ResNet34)"),
    ),
    (
        "Activation swaps, depthwise-separable convolutions, Dropout, width and depth improve "
        "ResNet34", RESNET34_PAPER, "nb02_ablation", ablation_row,
    ),
    (
        "ResNet50 is Bottleneck stages [3, 4, 6, 3], 25.6 M parameters", RESNET50_PAPER, None,
        ("`helpers.models.resnet50` equals torchvision's (strict load, same outputs), "
         "25,557,032 parameters, 4.1 G multiply-adds (notebook 03)", "any (exact)", "held"),
    ),
    (
        "Residual connections overcome the degradation problem", RESNET50_PAPER,
        "nb01_degradation", degradation_row,
    ),
]  # fmt: skip
# Rows of notebooks 04-06: measured in quick mode only so far, text from their committed runs.
QUICK_ROWS_FILE = REPO / "tools" / "seed_claims_quick.md"


def table(results: Path = REPO / "results" / "laptop") -> str:
    """The whole seed-claims table, as markdown."""
    lines = [HEADER]
    for claim, paper, name, source in ROWS:
        path = results / f"{name}.json" if name else None
        if callable(source):
            if path is None or not path.is_file():
                cells = (f"not yet measured in laptop mode (`{name}` has no record)", "-", "-")
            else:
                cells = source(json.loads(path.read_text()))
        else:
            cells = source
        lines.append("| " + " | ".join((claim, paper, *cells)) + " |")
    lines.extend(QUICK_ROWS_FILE.read_text().strip().splitlines())
    return "\n".join(lines)


def readme_with_table(readme: str, new_table: str) -> str:
    """``readme`` with the text between the seed-claims markers replaced by ``new_table``."""
    if START not in readme or END not in readme:
        raise ValueError(f"README.md lacks the markers {START!r} and {END!r}")
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{new_table}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a change")
    args = parser.parse_args(argv)
    path = REPO / "README.md"
    readme = path.read_text()
    updated = readme_with_table(readme, table())
    if args.check:
        if updated != readme:
            print("README.md's seed-claims table is stale: run python tools/seed_claims.py")
            return 1
        return 0
    path.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
