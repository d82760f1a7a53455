"""``python -m helpers.train``: the command line, kill -9 and resume, torchrun with DDP.

Runs use the offline digits set at 8x8 or 16x16 (no downloads). Only two tests start
subprocesses (each costs a few seconds of imports): the run that is killed with SIGKILL,
and the torchrun run. Everything else calls ``main()`` in this process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from helpers.train import CHECKPOINT_NAME, load_checkpoint
from helpers.train.__main__ import main

REPO = Path(__file__).resolve().parent.parent
# 256 training digits in batches of 32: 8 steps per epoch, divisible by 2 processes.
DATA = ["--data", "digits", "--train-size", "256", "--val-size", "64", "--test-size", "0"]
RUN = ["--batch-size", "32", "--seed", "0", "--no-progress"]

TINY_NET = '''
"""A BatchNorm-free CNN for the DDP test (BatchNorm statistics are per process under DDP)."""
from torch import nn


def make(num_classes, in_chans):
    return nn.Sequential(
        nn.Conv2d(in_chans, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, num_classes),  # 8x8 images
    )
'''


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as in the subprocesses (OMP_NUM_THREADS=1): CPU kernels may sum in
    another order with another thread count, and the resume test compares bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def subprocess_env(*paths: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", COURSE_DEVICE="cpu")
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), str(REPO), env.get("PYTHONPATH", "")])
    return env


def final_weights(checkpoint_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(checkpoint_dir / CHECKPOINT_NAME)
    return ckpt["model"]


def test_help_explains_options_with_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for text in (
        "--checkpoint-dir",
        "--image-folder",
        "--label-smoothing",
        "torchrun",
        "examples:",
    ):
        assert text in out


def test_cli_trains_and_writes_metrics(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    out = tmp_path / "metrics.json"
    argv = ["--model", "resnet20", *DATA, "--image-size", "8", *RUN, "--epochs", "2"]
    assert main([*argv, "--schedule", "cosine", "--label-smoothing", "0.1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "digits" in printed and "epoch   2/2" in printed
    results = json.loads(out.read_text())
    assert [r["epoch"] for r in results["history"]] == [1, 2]
    assert results["val"]["acc"] == pytest.approx(results["history"][-1]["val_acc"])
    assert results["args"]["schedule"] == "cosine" and results["world_size"] == 1
    # Training and validation seconds apart, per epoch (what time-to-accuracy is made of).
    assert [t["epoch"] for t in results["timing"]] == [1, 2]
    for timing, record in zip(results["timing"], results["history"], strict=True):
        assert timing["train_seconds"] > 0 and timing["val_seconds"] > 0
        assert timing["train_seconds"] + timing["val_seconds"] <= record["time"] + 1e-6


def test_cli_drop_last_gives_every_step_the_same_shape(capsys, monkeypatch):
    """256 images in batches of 48: 5 full steps and one of 16, or 5 steps with --drop-last."""
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    argv = ["--model", "resnet20", *DATA, "--image-size", "8", *RUN, "--epochs", "1"]
    argv[argv.index("--batch-size") + 1] = "48"
    assert main(argv) == 0
    assert "1 epochs x 6 steps" in capsys.readouterr().out
    assert main([*argv, "--drop-last"]) == 0
    assert "1 epochs x 5 steps" in capsys.readouterr().out


def test_cli_on_an_image_folder_with_test_metrics(tmp_path, capsys, monkeypatch):
    """Your own images: PATH/<class>/<image>.png, here two classes told apart by brightness."""
    from PIL import Image

    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    g = torch.Generator().manual_seed(0)
    for label, name in enumerate(("dark", "light")):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(12):
            pixels = torch.randint(0, 100, (8, 8, 3), generator=g) + 150 * label
            Image.fromarray(pixels.to(torch.uint8).numpy()).save(
                tmp_path / "images" / name / f"{i}.png"
            )
    out = tmp_path / "metrics.json"
    argv = ["--model", "resnet20", "--image-folder", str(tmp_path / "images"), "--image-size", "8"]
    argv += ["--val-size", "4", "--test-size", "4", "--batch-size", "8", "--epochs", "2"]
    assert main([*argv, "--no-progress", "--test", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert "ImageFolder" in results["data_source"] and "16/4/4" in results["data_source"]
    assert set(results["test"]) == {"loss", "acc", "top5"}
    assert "test : loss" in capsys.readouterr().out


def test_small_images_upscaled_by_default_are_named(tmp_path, capsys):
    """CIFAR-sized images in a folder, no --image-size: the CLI says they become 224x224."""
    from PIL import Image

    from helpers.data import load_image_folder
    from helpers.train.__main__ import _note_upscaling

    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("RGB", (32, 32)).save(tmp_path / name / f"{i}.png")
    for size in (224, 48):
        splits = load_image_folder(tmp_path, image_size=size, val_size=0, test_size=0)
        _note_upscaling(str(tmp_path), splits)
        err = capsys.readouterr().err
        if size == 224:
            assert "are 32x32 (the first one)" in err
        else:  # less than 2x: nothing to say
            assert err == ""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "resnet20", "--amp", "fp16"], "amp='fp16' needs a CUDA device"),
        (["--model", "resnet21"], "unknown model 'resnet21'"),
        (["--model", "resnet20", "--model-arg", "shortcut"], "KEY=VALUE"),
        (["--model", "no_such_module:make"], "cannot import make from no_such_module"),
    ],
)
def test_cli_errors_are_one_clear_line(extra, message, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert main([*DATA, "--image-size", "8", *RUN, "--epochs", "1", *extra]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_kill_9_mid_training_then_rerun_ends_like_an_uninterrupted_run(tmp_path, monkeypatch):
    """SIGKILL after the first checkpoint is written, rerun the same command, compare.

    resnet20 (BatchNorm buffers) with the DeviceLoader's random crops: the rerun must replay
    the same batches and augmentation from the checkpointed epoch on.
    """
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    data = ["--data", "digits", "--train-size", "128", "--val-size", "32", "--test-size", "0"]
    argv = ["--model", "resnet20", *data, "--image-size", "16", *RUN, "--epochs", "4"]
    killed_dir, reference_dir = tmp_path / "killed", tmp_path / "reference"

    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.train", *argv, "--checkpoint-dir", str(killed_dir)],
        cwd=tmp_path,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        path = killed_dir / CHECKPOINT_NAME
        deadline = time.monotonic() + 120
        while not path.exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.02)
        time.sleep(0.1)  # into epoch 2
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    epoch_at_kill = load_checkpoint(path)["epoch"]
    assert 1 <= epoch_at_kill < 4

    # The rerun (in this process: the same command line) and an uninterrupted run.
    assert main([*argv, "--checkpoint-dir", str(killed_dir)]) == 0
    assert main([*argv, "--checkpoint-dir", str(reference_dir)]) == 0
    resumed, reference = final_weights(killed_dir), final_weights(reference_dir)
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), key
    assert load_checkpoint(killed_dir / CHECKPOINT_NAME)["epoch"] == 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process_with_the_same_global_batch(tmp_path, monkeypatch):
    """2 gloo processes x batch 16 against 1 process x batch 32, same data and augmentation.

    The model has no BatchNorm: under DDP each process normalises with the statistics of its
    own 16 images (SyncBatchNorm needs CUDA), which would differ from one batch of 32 by
    design. Without it, DDP's averaged gradients equal the single-process gradient up to
    float32 summation order, so the final weights agree to about 1e-6; we allow 1e-5.
    """
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    (tmp_path / "train_cli_tinynet.py").write_text(textwrap.dedent(TINY_NET))
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["--model", "train_cli_tinynet:make", *DATA, "--image-size", "8", *RUN]
    argv += ["--epochs", "3", "--lr", "0.1", "--schedule", "cosine"]

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_addr=127.0.0.1",
            f"--master_port={free_port()}",
            "-m",
            "helpers.train",
            *argv,
            "--checkpoint-dir",
            "ddp",
            "--out",
            "ddp.json",
        ],
        cwd=tmp_path,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "on 2 process(es)" in result.stdout
    assert result.stdout.count("epoch   1/3") == 1  # only rank 0 prints

    assert main([*argv, "--checkpoint-dir", str(tmp_path / "single")]) == 0
    ddp, single = final_weights(tmp_path / "ddp"), final_weights(tmp_path / "single")
    diff = max((ddp[k] - single[k]).abs().max().item() for k in single)
    print(f"max abs difference of final weights, DDP x2 vs 1 process: {diff:.3g}")
    assert diff < 1e-5
    ddp_history = json.loads((tmp_path / "ddp.json").read_text())["history"]
    single_history = load_checkpoint(tmp_path / "single" / CHECKPOINT_NAME)["history"]
    for a, b in zip(ddp_history, single_history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["train_acc"] == b["train_acc"]
    assert ddp_history[-1]["val_acc"] > 0.4  # it learned (chance is 0.1): the weights moved
