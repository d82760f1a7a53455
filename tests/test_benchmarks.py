"""benchmarks/run_all.py at toy size, and helpers.train.precision.choose_cpu_precision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import measurement
from helpers.train import precision

REPO = Path(__file__).resolve().parent.parent


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    )  # fmt: skip


@pytest.mark.slow
def test_run_all_smoke_prints_one_table_of_ratios_and_writes_json(tmp_path):
    out = tmp_path / "run_all.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/run_all.py", "--smoke", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    assert text.count("| benchmark | contender | baseline | speed ratio | detail |") == 1
    assert "load average" in text and "torch " in text and "CPU: " in text
    record = json.loads(out.read_text())
    names = " ".join(r["benchmark"] for r in record["rows"])
    for part in ("loader", "train step", "resnet20 step", "resnet50 step", "choose_cpu_precision"):
        assert part in names
    assert all(r["ratio"] > 0 for r in record["rows"])
    assert record["machine"]["torch"] == torch.__version__


def _hardware(native: bool):
    return lambda: {"cpu": "test", "avx512_bf16": native, "amx_bf16": False,
                    "native_cpu": native, "cuda": "none"}  # fmt: skip


def test_bf16_hardware_reads_the_cpu():
    info = precision.bf16_hardware()
    assert {"cpu", "avx512_bf16", "amx_bf16", "native_cpu", "cuda"} <= set(info)
    assert info["native_cpu"] == (info["avx512_bf16"] or info["amx_bf16"])


def test_choice_without_native_bf16_never_tries_bf16(monkeypatch):
    monkeypatch.setattr(precision, "bf16_hardware", _hardware(False))
    choice = precision.choose_cpu_precision(tiny_net(), (3, 8, 8), batch_size=4, steps=1)
    assert set(choice.seconds) == {"fp32", "fp32+channels_last"}
    assert choice.amp is None
    assert "not tried" in choice.reason


def _fake_times(times):
    def fake(contenders, x, y, repeats):
        assert set(contenders) == set(times)
        return dict(times)

    return fake


def test_choice_takes_the_fastest_candidate_when_it_beats_fp32_by_the_margin(monkeypatch):
    monkeypatch.setattr(precision, "bf16_hardware", _hardware(True))
    times = {"fp32": 1.0, "fp32+channels_last": 0.9, "bf16": 0.6, "bf16+channels_last": 0.5}
    monkeypatch.setattr(precision, "training_step_times", _fake_times(times))
    choice = precision.choose_cpu_precision(tiny_net(), (3, 8, 8), batch_size=2, steps=1)
    assert (choice.amp, choice.channels_last, choice.label) == ("bf16", True, "bf16+channels_last")
    assert "2.00x" in choice.reason


def test_choice_keeps_fp32_when_nothing_is_clearly_faster(monkeypatch):
    monkeypatch.setattr(precision, "bf16_hardware", _hardware(True))
    times = {"fp32": 1.0, "fp32+channels_last": 0.97, "bf16": 1.4, "bf16+channels_last": 0.98}
    monkeypatch.setattr(precision, "training_step_times", _fake_times(times))
    choice = precision.choose_cpu_precision(tiny_net(), (3, 8, 8), batch_size=2, steps=1)
    assert (choice.amp, choice.channels_last) == (None, False)


def test_choice_measures_real_steps_and_leaves_the_model_alone():
    model = tiny_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    choice = precision.choose_cpu_precision(model, (3, 8, 8), batch_size=4, steps=1)
    assert choice.label in choice.seconds and all(s > 0 for s in choice.seconds.values())
    expected = 4 if precision.bf16_hardware()["native_cpu"] else 2
    assert len(choice.seconds) == expected
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("size", [(3, 8), (3, 0, 8), (3, 8.0, 8)])
def test_choice_rejects_a_bad_input_size(size):
    with pytest.raises(ValueError, match="input_size"):
        precision.choose_cpu_precision(tiny_net(), size)


# ---- helpers.measurement (notebook 08's measurements)


def test_profile_categories_shares_sum_to_one_and_find_the_convolutions():

    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,))
    shares, table = measurement.profile_categories(tiny_net(), x, y, steps=1)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["convolution"] > 0 and "Self CPU" in table


def test_loader_rates_times_every_loader():
    from helpers import data

    splits = data.load("shapes", train_size=64, val_size=0, test_size=0)
    loaders = {
        "pil": measurement.pil_loader(
            splits.train, splits.mean, splits.std, batch_size=32, workers=0
        ),
        "device": data.DeviceLoader.from_set(
            splits.train, batch_size=32, mean=splits.mean, std=splits.std, augment=True
        ),
    }
    x, _ = next(iter(loaders["pil"]))
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32
    rates = measurement.loader_rates(loaders, torch.device("cpu"), repeats=1)
    assert set(rates) == {"pil", "device"} and all(r > 0 for r in rates.values())


def test_gpu_results_reads_records_and_skips_histories(tmp_path):

    assert measurement.gpu_results(tmp_path / "missing") == []
    (tmp_path / "3_resnet18_94.json").write_text(json.dumps({"val_acc_mean": 0.94}))
    (tmp_path / "3_resnet18_94_seed0.history.json").write_text("{}")
    (record,) = measurement.gpu_results(tmp_path)
    assert record == {"file": "3_resnet18_94.json", "val_acc_mean": 0.94}


def test_gpu_run_toy_recipe_keeps_every_option_but_the_sizes():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import gpu_run
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    argv = gpu_run.toy(gpu_run.RECIPE_R20)
    assert argv[argv.index("--epochs") + 1] == "2" and "--milestones" not in argv
    assert argv[argv.index("--schedule") + 1] == "cosine"
    argv = gpu_run.toy(gpu_run.RECIPE_94)
    for option in ("--compile", "--channels-last", "--tta", "--nesterov", "--ema-decay"):
        assert option in argv
    assert "width=0.25" in argv


def test_choose_precision_is_fp16_on_cuda_and_measured_on_the_cpu(monkeypatch):
    from helpers.train import precision

    on_cpu = precision.choose_precision(tiny_net(), (3, 8, 8), "cpu", batch_size=2, steps=1)
    assert "fp32" in on_cpu.seconds and on_cpu.reason  # measured, with its evidence
    # Other devices without the hardware: pretend the device parsed, nothing is run there.
    monkeypatch.setattr(precision, "resolve_device", torch.device)
    on_cuda = precision.choose_precision(tiny_net(), (3, 8, 8), "cuda")
    assert (on_cuda.amp, on_cuda.channels_last, on_cuda.seconds) == ("fp16", True, {})
    assert precision.choose_precision(tiny_net(), (3, 8, 8), "mps").label == "fp32"


def test_where_time_goes_lists_the_slowest_cells_of_a_run(tmp_path):
    def code(source, start, end):
        times = {"iopub.execute_input": start, "shell.execute_reply": end}
        return {"cell_type": "code", "source": source, "metadata": {"execution": times}}

    cells = [
        {"cell_type": "markdown", "source": "## 1. Training", "metadata": {}},
        code("fit(model)\n", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:07.500Z"),
        code("print(1)", "2026-01-01T00:00:08.000Z", "2026-01-01T00:00:08.250Z"),
        {"cell_type": "code", "source": "never run", "metadata": {}},
    ]
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(json.dumps({"cells": cells}))
    script = REPO / "benchmarks" / "where_time_goes.py"
    result = subprocess.run(
        [sys.executable, str(script), str(notebook), "--top", "1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "| nb.ipynb | 7.8 | 7.5 s, 1. Training, `fit(model)` |" in result.stdout
