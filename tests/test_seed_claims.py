"""tools/seed_claims.py: the README's seed-claims table is generated from results files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("seed_claims", REPO / "tools" / "seed_claims.py")
seed_claims = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seed_claims)


def test_the_readme_table_is_what_the_results_generate():
    readme = (REPO / "README.md").read_text()
    assert seed_claims.readme_with_table(readme, seed_claims.table()) == readme, (
        "README.md's seed-claims table is stale: run python tools/seed_claims.py"
    )


def degradation_record(errors: dict[str, tuple[float, float]]) -> dict:
    final = [
        {"model": model, "seed": seed, "train_err": err[seed], "val_err": 50.0}
        for model, err in errors.items()
        for seed in (0, 1)
    ]
    return {"final": final, "epochs": 4, "train_images": 5000, "date": "2026-12-05"}


def test_the_degradation_row_counts_seeds_from_the_numbers():
    record = degradation_record(
        {
            "plain20": (30.0, 32.0),
            "plain56": (60.0, 31.0),
            "resnet20": (28.0, 29.0),
            "resnet56": (27.5, 35.0),
        }
    )
    measured, mode, verdict = seed_claims.degradation_row(record)
    assert "plain-20 30.0 / 32.0 %" in measured and "ResNet-56 27.5 / 35.0 %" in measured
    assert "plain-56 minus plain-20 +14.5 points" in measured
    assert "trained worse in 1 of 2 seeds" in verdict  # seed 1: plain-56 is better
    assert "at least as well in 1 of 2" in verdict
    assert mode == "laptop (2026-12-05)"


def test_a_missing_record_says_not_yet_measured(tmp_path):
    text = seed_claims.table(results=tmp_path)
    assert "not yet measured in laptop mode (`nb01_degradation` has no record)" in text
    (tmp_path / "nb01_degradation.json").write_text(
        json.dumps(
            degradation_record(
                {m: (1.0, 2.0) for m in ("plain20", "plain56", "resnet20", "resnet56")}
            )
        )
    )
    assert "nb01_degradation` has no record" not in seed_claims.table(results=tmp_path)
