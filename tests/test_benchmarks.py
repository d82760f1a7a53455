"""benchmarks/run_all.py at toy size, and helpers.train.precision.choose_cpu_precision."""

from __future__ import annotations

import json
import os
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


def import_gpu_run():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import gpu_run
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return gpu_run


def test_gpu_run_toy_recipe_keeps_every_option_but_the_sizes():
    gpu_run = import_gpu_run()
    argv = gpu_run.toy(gpu_run.RECIPE_R20)
    assert argv[argv.index("--epochs") + 1] == "2" and "--milestones" not in argv
    assert argv[argv.index("--schedule") + 1] == "cosine"
    argv = gpu_run.toy(gpu_run.RECIPE_94)
    for option in ("--compile", "--channels-last", "--tta", "--nesterov", "--ema-decay"):
        assert option in argv
    assert "width=0.25" in argv and "--drop-last" in argv  # one step shape: one compile


def test_time_to_target_is_training_time_without_compile_and_validation():
    """Epoch training times 30, 10, 12, 11 s (the first compiles), validation 2 s each, 94 %
    first reached at epoch 3: 52 s of training, 19 s of it compile (30 - median 11), so 33 s."""
    gpu_run = import_gpu_run()
    result = {
        "history": [{"val_acc": a} for a in (0.80, 0.93, 0.941, 0.95)],
        "timing": [{"train_seconds": t, "val_seconds": 2.0} for t in (30.0, 10.0, 12.0, 11.0)],
        "val": {"acc": 0.95},
    }
    figures = gpu_run.seed_figures(result, 0.94)
    assert figures["epochs_to_target"] == 3 and figures["compile_seconds"] == 19.0
    assert figures["train_seconds_to_target_with_compile"] == 52.0
    assert figures["time_to_target_seconds"] == 33.0 and figures["val_seconds"] == 8.0
    never = gpu_run.seed_figures({**result, "val": {}}, 0.99)
    assert never["epochs_to_target"] is None and never["time_to_target_seconds"] is None
    runs = [
        {"status": "ok", **figures},
        {"status": "ok", **figures, "time_to_target_seconds": 35.0},
    ]
    summary = gpu_run.summarise([*runs, {"status": "skipped", "why": "no time"}])
    assert summary["status"] == "partial" and summary["seeds_reaching_target"] == 2
    assert summary["time_to_target_seconds"]["mean"] == 34.0
    assert summary["time_to_target_seconds"]["sd"] == pytest.approx(1.4142, abs=1e-4)
    # What notebook 08 prints today.
    assert summary["val_acc_mean"] == 0.95 and summary["train_seconds_mean"] == 63.0


def test_gpu_run_writes_only_its_step_files_and_unpacks_the_archive(tmp_path):
    import tarfile

    gpu_run = import_gpu_run()
    run = gpu_run.Run(tmp_path / "out", budget_s=100, dry_run=True)
    run.skip("4_resnet20_he", "opt-in")
    assert json.loads((tmp_path / "out" / "4_resnet20_he.json").read_text())["why"] == "opt-in"
    with pytest.raises(ValueError, match="not one of the step files"):
        run.save("1_resnet18_seed0.history", {})
    assert len(gpu_run.STEP_FILES) + 1 <= gpu_run.MAX_FILES  # + gpu_run.sh's log
    record = run.command("too long", [sys.executable, "-c", "pass"], need_s=1000, timeout_s=1)
    assert record["status"] == "skipped" and "needs ~1000" in record["why"]
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "0.jpg").write_bytes(b"x")
    with tarfile.open(tmp_path / "a.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "train", arcname="train")
    folder = gpu_run.extract_archive(tmp_path / "a.tar.gz", tmp_path / "x")
    assert folder == tmp_path / "x" / "train" and (folder / "cat" / "0.jpg").is_file()


def test_gpu_run_scripts_are_made_for_the_bare_gpu_machine():
    """Cheap checks of what the bare-environment dry run (benchmarks/bare_env_dry_run.sh,
    not run in CI: it builds a virtual environment) found out the hard way."""
    shell = (REPO / "benchmarks" / "gpu_run.sh").read_text()
    assert "python3 benchmarks/gpu_run.py" in shell and "exec python " not in shell
    assert 'export PYTHONPATH="$repo' in shell and "local/wheels" in shell and "--no-index" in shell
    assert "pipefail" in shell and "$OUT" in shell
    source = (REPO / "benchmarks" / "gpu_run.py").read_text()
    assert "addopts=" in source  # pyproject's nbval options would make pytest exit 4
    assert "no:nbval" in source  # a carried nbval that fails to import would stop pytest
    assert source.index("sys.path.insert(0, str(REPO))") < source.index("from common import")
    dry = (REPO / "benchmarks" / "bare_env_dry_run.sh").read_text()
    for package in ("torch==", "torchvision==", "timm", "seaborn", "pytest", "scikit-learn"):
        assert package in dry
    for absent in ("nbval", "ipykernel", "jupyter", "pytorch_grad_cam", "helpers"):
        assert absent in dry.split("absent=(")[1].split(")")[0]
    assert "pip install -e" not in dry and "--dry-run" in dry and "> 8" in dry
    wheels = (REPO / "benchmarks" / "gpu_wheels.sh").read_text()
    assert "--no-deps" in wheels and "nbval" in wheels and "ipykernel" in wheels
    assert "WITH_WHEELS" in dry and "GPU_RUN_WHEELS" in shell
    for name in ("gpu_run.sh", "bare_env_dry_run.sh", "gpu_wheels.sh"):
        assert (REPO / "benchmarks" / name).stat().st_mode & 0o111, f"{name} is not executable"


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


def test_the_tests_collect_without_grad_cam_nbval_or_nbformat():
    """The GPU machine has none of the three: `pytest -m gpu` there must still collect every
    test module (those that need them skip), or the prepared run's test step fails at once."""
    code = (
        "import sys\n"
        "class Missing:  # these packages cannot be found, as on the GPU machine\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pytorch_grad_cam', 'nbval', 'nbformat'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Missing())\n"
        "import pytest\n"
        "sys.exit(pytest.main(['--collect-only', '-q', '-o', 'addopts=', '-p', 'no:nbval',\n"
        "                      '-p', 'no:cacheprovider', 'tests']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert "error" not in out.stdout.splitlines()[-1]


def test_an_avx2_limit_means_no_native_bf16():
    """The AVX2 imitation (ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2) turns native bf16
    off, as a CPU without AVX512-BF16 has none, so amp='auto' and the notebooks keep fp32."""
    code = (
        "from helpers.train.precision import bf16_hardware; h = bf16_hardware(); "
        "print(h['native_cpu'], h['aten_capability'], h['onednn_max_isa'])"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "AVX2", "AVX2"]
