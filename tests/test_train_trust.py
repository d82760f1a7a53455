"""Runs you can trust (issue 21): stop signals, checkpoint files, resume identity, bad input.

Each test is a case found by trying awkward inputs as a user would: a SIGTERM, a second run
on the same checkpoint directory, a resume with other data or model options, a corrupt or
16-bit image, NaN pixels ... Everything runs in-process on tiny models and data.
"""

from __future__ import annotations

import os
import signal

import pytest
import torch

from helpers import train
from helpers.train import fit
from helpers.train.interrupt import GracefulInterrupt
from tests.test_train import (
    FIT,
    assert_same_weights,
    loaders,
    make_model,
    sigint_raises,  # noqa: F401 (a fixture)
    without_time,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class SignalAt:
    """Wraps a loader and sends this process ``signum`` before batch ``batch`` of ``epoch``."""

    def __init__(self, loader, epoch: int, batch: int, signum: int):
        self.loader, self.epoch, self.batch, self.signum = loader, epoch, batch, signum
        self.current = -1

    def __len__(self):
        return len(self.loader)

    def set_epoch(self, epoch):
        from helpers.train.distributed import set_epoch

        self.current = epoch
        set_epoch(self.loader, epoch)

    def identity(self):
        from helpers.data.core import identity

        return identity(self.loader)  # the same data as the loader it wraps

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if (self.current, i) == (self.epoch, self.batch):
                os.kill(os.getpid(), self.signum)
            yield batch


@pytest.fixture
def sigterm_fails_the_test():
    """SIGTERM's default would end pytest itself: unhandled, it fails the test instead."""

    def handler(signum, frame):
        raise RuntimeError("SIGTERM reached the default handler: the run was not stopped cleanly")

    previous = signal.signal(signal.SIGTERM, handler)
    yield
    signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------------------------
# Stop signals


def test_sigterm_saves_mid_epoch_and_resumes_exactly(tmp_path, sigterm_fails_the_test):
    reference = make_model()
    ref_history = fit(reference, *loaders(), **FIT)
    train_loader, val_loader = loaders()
    with pytest.raises(KeyboardInterrupt, match="epoch 2, step 4 by SIGTERM") as err:
        fit(
            make_model(),
            SignalAt(train_loader, 1, 3, signal.SIGTERM),
            val_loader,
            checkpoint_dir=tmp_path,
            **FIT,
        )
    assert err.value.signum == signal.SIGTERM  # the CLI exits with 128 + 15, as the shell would
    ckpt = train.load_checkpoint(tmp_path / train.CHECKPOINT_NAME)
    assert (ckpt["epoch"], ckpt["step"]) == (1, 4)
    model = make_model(seed=123)
    history = fit(model, *loaders(), checkpoint_dir=tmp_path, **FIT)
    assert_same_weights(model, reference)
    assert without_time(history) == without_time(ref_history)


def test_an_ignored_sigint_stays_ignored():
    """Started with SIGINT ignored (nohup, a background job), a run keeps ignoring it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with GracefulInterrupt() as interrupt:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            assert not interrupt.requested
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_raises", "sigterm_fails_the_test")
def test_interrupt_restores_the_previous_handlers():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with GracefulInterrupt():
        assert all(signal.getsignal(s) is not h for s, h in before.items())
    assert {s: signal.getsignal(s) for s in before} == before


# ----------------------------------------------------------------------------------------------
# Checkpoint files: stale temporaries, a lock, file modes, permission errors


def test_stale_temporary_checkpoint_is_removed_on_start(tmp_path, capsys):
    """kill -9 while saving leaves .checkpoint.pt.*.tmp: the next run removes it."""
    stale = tmp_path / f".{train.CHECKPOINT_NAME}.k9xyz.tmp"
    stale.write_bytes(b"\0" * 4096)
    fit(make_model(), *loaders(), checkpoint_dir=tmp_path, **{**FIT, "epochs": 1})
    assert not stale.exists()
    assert f"removed {stale}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [train.CHECKPOINT_NAME]


def test_second_run_on_a_locked_checkpoint_dir_is_refused(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    fit(make_model(), *loaders(), checkpoint_dir=tmp_path, **{**FIT, "epochs": 1})
    before = (tmp_path / train.CHECKPOINT_NAME).read_bytes()
    # Another run holds the folder, as the first fit did while it trained.
    with open(tmp_path / ".checkpoint.lock", "a+") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other.write("pid 4242 on gpu-node-7, since 2026-01-01 10:00:00: python -m helpers.train")
        other.flush()
        with pytest.raises(
            train.CheckpointError, match=r"in use by another run \(pid 4242 on gpu-"
        ):
            fit(make_model(), *loaders(), checkpoint_dir=tmp_path, **{**FIT, "epochs": 1})
    assert (tmp_path / train.CHECKPOINT_NAME).read_bytes() == before  # untouched
    # Once it is gone, the folder is free; while fit runs, the lock names this process.
    (tmp_path / train.CHECKPOINT_NAME).unlink()
    seen = []

    def look(record):
        seen.append((tmp_path / ".checkpoint.lock").read_text())

    fit(
        make_model(), *loaders(), checkpoint_dir=tmp_path, on_epoch_end=look, **{**FIT, "epochs": 2}
    )
    assert seen[0].startswith(f"pid {os.getpid()} on ")
    assert not (tmp_path / ".checkpoint.lock").exists()  # removed at the end


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_checkpoint_is_written_with_the_umask_mode(tmp_path, umask):
    from helpers.train.checkpoint import save_checkpoint

    previous = os.umask(umask)
    try:
        save_checkpoint({"a": torch.ones(1)}, tmp_path / "c.pt")
    finally:
        os.umask(previous)
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_unreadable_checkpoint_is_a_permission_error_not_corrupt(tmp_path, monkeypatch):
    reference_dir = tmp_path / "run"
    fit(make_model(), *loaders(), checkpoint_dir=reference_dir, **{**FIT, "epochs": 1})
    path = reference_dir / train.CHECKPOINT_NAME
    path.chmod(0o600)

    def refuse(file, *args, **kwargs):  # what another user meets (root could read it anyway)
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(
        PermissionError, match=rf"cannot read checkpoint {path}: Permission denied"
    ) as err:
        train.load_checkpoint(path)
    assert "mode 0600" in str(err.value) and "chmod" in str(err.value)
    assert "corrupt" not in str(err.value) and "Delete" not in str(err.value)


# ----------------------------------------------------------------------------------------------
# The command line: every argument that needs no data is checked before any is loaded


def _no_data_loading(*args, **kwargs):
    raise AssertionError("data were loaded before the arguments were checked")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--checkpoint-dir", "{file}/runs"],
            "checkpoint_dir '{file}/runs' cannot hold checkpoints",
        ),
        (["--checkpoint-dir", "{file}"], "checkpoint_dir '{file}' is not a directory"),
        (["--out", "{file}/metrics.json"], "--out '{file}/metrics.json' cannot be written"),
        (["--out", "{tmp}"], "--out '{tmp}' is a directory"),
        (["--test"], "--test with --test-size 0: there would be no test split"),
        (["--batch-size", "0"], "--batch-size must be an int >= 1, got 0"),
        (["--image-size", "0"], "--image-size must be an int >= 1, got 0"),
        (["--model", "resnet21"], "unknown model 'resnet21'"),
        (["--model", "no_such_module:make"], "cannot import make from no_such_module"),
    ],
)
def test_cli_checks_arguments_before_loading_data(extra, message, tmp_path, capsys, monkeypatch):
    from helpers.train import __main__ as cli
    from tests.test_train_cli import DATA, RUN

    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.setattr(cli, "load_data", _no_data_loading)
    file = tmp_path / "a_file"
    file.write_text("in the way")
    fill = {"file": str(file), "tmp": str(tmp_path)}
    extra = [e.format(**fill) for e in extra]
    argv = ["--model", "resnet20", *DATA, *RUN, "--epochs", "1", *extra]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert message.format(**fill) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_help_says_that_a_model_function_runs_your_code(capsys):
    from helpers.train.__main__ import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "'package.module:function'" in out and "runs code you name" in out


# ----------------------------------------------------------------------------------------------
# A resume refuses another run: other data, split, image size, augmentation or model options


def image_folder(root, classes=("dark", "light"), n: int = 10, size: int = 8, seed: int = 0):
    """root/<class>/<i>.png: small RGB images whose brightness tells the classes apart."""
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = torch.randint(0, 100, (size, size, 3), generator=g) + 150 * label
            Image.fromarray(pixels.to(torch.uint8).numpy()).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize(
    ("change", "difference"),
    [
        ({"--data-seed": "1"}, "identity.data_seed: checkpoint has 0, this call has 1"),
        ({"--no-augment": None}, "identity.augment: checkpoint has True, this call has False"),
        ({"--image-size": "16"}, "identity.image_size: checkpoint has 8, this call has 16"),
        (
            {"--image-folder": "{other}"},
            "identity.classes: checkpoint has ['dark', 'light'], this call has ['cats', 'dogs']",
        ),
        (
            {"--model-arg": "act=silu"},
            "identity.model_args.act: checkpoint has None, this call has 'silu'",
        ),
        (
            {"--model": "plain20"},
            "identity.model: checkpoint has 'resnet20', this call has 'plain20'",
        ),
    ],
)
def test_cli_resume_of_another_run_is_refused(change, difference, tmp_path, capsys, monkeypatch):
    from helpers.train.__main__ import main

    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    folder = image_folder(tmp_path / "images")
    other = image_folder(tmp_path / "other", classes=("cats", "dogs"))
    options = {
        "--model": "resnet20",
        "--image-folder": str(folder),
        "--image-size": "8",
        "--val-size": "4",
        "--test-size": "0",
        "--batch-size": "8",
        "--epochs": "1",
        "--seed": "0",
        "--no-progress": None,
        "--checkpoint-dir": str(tmp_path / "run"),
    }

    def argv(opts):
        out = []
        for key, value in opts.items():
            out += [key] if value is None else [key, value.format(other=other)]
        return out

    assert main(argv(options)) == 0
    path = tmp_path / "run" / train.CHECKPOINT_NAME
    before = path.read_bytes()
    capsys.readouterr()
    assert main(argv({**options, **change})) == 1
    err = capsys.readouterr().err
    assert "was written by a different run and cannot be resumed" in err
    assert f"- {difference}" in err, err
    assert path.read_bytes() == before


def device_loader(seed: int = 0, augment: bool = True, n: int = 48):
    from helpers.data import DeviceLoader

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 2, 5, 5), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 3
    return DeviceLoader(
        images,
        labels,
        batch_size=16,
        mean=(0.5, 0.5),
        std=(0.25, 0.25),
        augment=augment,
        pad=1,
        seed=seed,
        device="cpu",
    )


@pytest.mark.parametrize(
    ("change", "difference"),
    [
        ({"seed": 1}, "data.train.seed: checkpoint has 0, this call has 1"),
        ({"augment": False}, "data.train.augmentation: checkpoint has ['RandomCropFlip"),
        ({"n": 32}, "data.train.images: checkpoint has [48, 2, 5, 5], this call has [32, 2, 5, 5]"),
        (
            {"dropout": 0.5},
            "modules.5: checkpoint has 'Dropout(p=0.2, inplace=False)', this call has "
            "'Dropout(p=0.5",
        ),
    ],
)
def test_fit_resume_with_other_data_or_model_options_is_refused(change, difference, tmp_path):
    options = {**FIT, "epochs": 1, "checkpoint_dir": tmp_path}
    fit(make_model(), device_loader(), **options)
    dropout = change.pop("dropout", 0.2)
    with pytest.raises(train.CheckpointError, match="was written by a different run") as err:
        fit(make_model(dropout=dropout), device_loader(**change), **options)
    assert f"- {difference}" in str(err.value)


# ----------------------------------------------------------------------------------------------
# Exact resume on the path that reads image files during training (DataLoader, workers)


def file_loaders(folder, workers: int = 1):
    """The file-reading path (as for --image-folder at 224 px), at 8x8 with one worker."""
    from helpers.data import load_image_folder, make_loaders

    splits = load_image_folder(folder, image_size=8, val_size=4, test_size=0, as_tensors=False)
    train_loader, val_loader, _ = make_loaders(
        splits, batch_size=4, device="cpu", seed=0, num_workers=workers
    )
    return train_loader, val_loader


def small_rgb_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )


@pytest.mark.usefixtures("sigint_raises")
@pytest.mark.parametrize("where", ["mid-epoch", "epoch boundary"])
def test_file_loader_resume_is_exact(where, tmp_path):
    """Ctrl-C in epoch 2 (or a crash right after epoch 1), then a new run: the weights equal
    those of an uninterrupted run, bit for bit. The order and each image's random crop and
    flip are functions of (seed, epoch, position), not of the worker processes' history."""
    folder = image_folder(tmp_path / "images", n=12)
    options = {**FIT, "epochs": 2, "lr": 0.05}
    reference = small_rgb_model()
    fit(reference, *file_loaders(folder), **options)

    run = tmp_path / "run"
    train_loader, val_loader = file_loaders(folder)
    if where == "mid-epoch":
        with pytest.raises(KeyboardInterrupt, match="epoch 2, step 3"):
            fit(
                small_rgb_model(),
                SignalAt(train_loader, 1, 2, signal.SIGINT),
                val_loader,
                checkpoint_dir=run,
                **options,
            )
    else:

        def stop(record):
            raise RuntimeError("stopped after epoch 1")

        with pytest.raises(RuntimeError, match="stopped after epoch 1"):
            fit(
                small_rgb_model(),
                train_loader,
                val_loader,
                checkpoint_dir=run,
                on_epoch_end=stop,
                **options,
            )
    del train_loader, val_loader  # its workers end: the resumed run starts fresh ones
    resumed = small_rgb_model(seed=1)
    fit(resumed, *file_loaders(folder), checkpoint_dir=run, **options)
    assert_same_weights(resumed, reference)


# ----------------------------------------------------------------------------------------------
# Bad data found during training: said in one line, with a checkpoint to resume from


def test_corrupt_image_mid_epoch_saves_and_names_the_file_in_one_line(tmp_path):
    from helpers.data import DatasetCorruptError

    folder = image_folder(tmp_path / "images", n=12)
    train_loader, val_loader = file_loaders(folder, workers=1)

    class CorruptAfterFirstStep(torch.nn.Module):
        """Overwrites every image file with garbage during the first training step."""

        def __init__(self):
            super().__init__()
            self.net = small_rgb_model()

        def forward(self, x):
            if self.training and not getattr(self, "done", False):
                self.done = True
                for path in folder.rglob("*.png"):
                    path.write_bytes(b"not a png")
            return self.net(x)

    with pytest.raises(DatasetCorruptError) as err:
        fit(
            CorruptAfterFirstStep(),
            train_loader,
            val_loader,
            checkpoint_dir=tmp_path / "run",
            **FIT,
        )
    message = str(err.value)
    assert message.startswith("cannot read image file ") and ".png" in message
    assert "\n" not in message and "Traceback" not in message
    ckpt = train.load_checkpoint(tmp_path / "run" / train.CHECKPOINT_NAME)
    assert ckpt["epoch"] == 0 and ckpt["step"] >= 1
    assert f"training stopped at epoch 1, step {ckpt['step']}; checkpoint saved to" in message


def test_nan_pixels_are_named_before_the_learning_rate_is_blamed():
    from tests.test_train import make_data

    x, y = make_data(64)
    x[40, 0, 1, 1] = float("nan")  # in the third batch of 16
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    with pytest.raises(
        ValueError, match=r"batch at epoch 1/1, step 3/4 holds NaN or infinite inputs"
    ) as err:
        fit(make_model(), data, **{**FIT, "epochs": 1})
    assert "learning rate. Check" in str(err.value) and "Try a lower" not in str(err.value)


def test_a_label_out_of_range_in_a_later_batch_is_a_clear_error():
    from tests.test_train import make_data

    x, y = make_data(64)
    y[50] = 7  # the first batch is fine; the fourth holds class 7 of 3
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    with pytest.raises(ValueError, match=r"\[0, 3\).*epoch 1, step 4 holds labels from 0 to 7"):
        fit(make_model(), data, **{**FIT, "epochs": 1})


# ----------------------------------------------------------------------------------------------
# Data that is wrong in a way nobody would guess


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    """A 16-bit grey PNG (mode I;16): Pillow's own conversion makes ~all pixels 255."""
    import numpy as np
    from PIL import Image

    from helpers.data import load_image_folder

    ramp = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1000).astype(np.uint16)  # 0..63000
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(ramp).save(tmp_path / name / f"{i}.png")
    assert Image.open(tmp_path / "a" / "0.png").mode == "I;16"
    for as_tensors in (True, False):
        splits = load_image_folder(
            tmp_path, image_size=8, val_size=0, test_size=0, as_tensors=as_tensors
        )
        if as_tensors:
            image = splits.train.images[0]  # (3, 8, 8) uint8
        else:
            path = splits.train.folder.samples[0][0]  # read by the file-reading loaders
            image = torch.from_numpy(np.array(splits.train.folder.loader(path))).permute(2, 0, 1)
        expected = torch.from_numpy(
            np.round(ramp.astype(np.float64) * 255 / 65535).astype(np.uint8)
        )
        assert torch.equal(image[0], expected) and torch.equal(image[2], expected)


def test_float_images_are_refused_naming_file_and_mode(tmp_path):
    import numpy as np
    from PIL import Image

    from helpers.data import load_image_folder

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)).save(tmp_path / name / "0.tiff")
    path = tmp_path / "a" / "0.tiff"
    with pytest.raises(
        ValueError, match=rf"image file {path} has mode 'F' \(32-bit float pixels\)"
    ):
        load_image_folder(tmp_path, image_size=8, val_size=0, test_size=0)


def test_a_channel_with_zero_std_is_explained(tmp_path):
    from PIL import Image

    from helpers.data import load_image_folder, make_loaders

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(tmp_path / name / f"{i}.png")
    splits = load_image_folder(tmp_path, image_size=8, val_size=0, test_size=0)
    assert splits.std[1:] == (0.0, 0.0)
    with pytest.raises(
        ValueError, match=r"channel\(s\) \[1, 2\]: every pixel .* same value.*black"
    ):
        make_loaders(splits, batch_size=2, device="cpu")


def test_device_loader_refuses_a_nan_std():
    from helpers.data import DeviceLoader

    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="std must be positive finite numbers"):
        DeviceLoader(
            images,
            torch.zeros(4, dtype=torch.int64),
            batch_size=2,
            mean=(0.5,) * 3,
            std=(float("nan"), 1, 1),
        )


def test_an_image_folder_with_one_class_is_refused(tmp_path):
    from helpers.data import load_image_folder

    image_folder(tmp_path / "root", classes=("only",), n=4)
    with pytest.raises(
        ValueError, match=r"holds 1 class folder \('only'\): a classifier needs at least two"
    ):
        load_image_folder(tmp_path / "root", image_size=8, val_size=0, test_size=0)


def test_images_in_nested_subfolders_are_noted_once(tmp_path):
    from helpers.data import load_image_folder

    image_folder(tmp_path, n=2)
    image_folder(tmp_path / "dark" / "deeper", classes=("x", "y"), n=2)
    with pytest.warns(UserWarning) as record:
        load_image_folder(tmp_path, image_size=8, val_size=0, test_size=0)
    notes = [str(w.message) for w in record if "sub-folders of class folders" in str(w.message)]
    assert len(notes) == 1
    assert (
        notes[0].startswith(f"4 images of {tmp_path} are in sub-folders") and "'dark'" in notes[0]
    )


def test_image_size_zero_is_a_clear_error(tmp_path):
    from helpers.data import load_image_folder

    image_folder(tmp_path, n=2)
    with pytest.raises(ValueError, match="image_size must be an int >= 1, got 0"):
        load_image_folder(tmp_path, image_size=0, val_size=0, test_size=0)


# ----------------------------------------------------------------------------------------------
# Grad-CAM on inputs that cannot give a map


def tiny_cam_model():
    from helpers import models

    torch.manual_seed(0)
    return models.resnet18(stem="cifar", width=0.125, num_classes=3).eval()


def test_grad_cam_on_an_empty_batch_is_a_clear_error():
    from helpers import cam

    with pytest.raises(ValueError, match=r"images is an empty batch, shape \(0, 3, 16, 16\)"):
        cam.grad_cam(tiny_cam_model(), torch.zeros(0, 3, 16, 16))


def test_grad_cam_on_nan_images_is_a_clear_error():
    from helpers import cam

    images = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    images[1, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match=r"images \[1\] hold NaN or infinite values"):
        cam.grad_cam(tiny_cam_model(), images, targets=0)


def test_grad_cam_map_that_comes_out_nan_is_a_clear_error():
    from helpers import cam

    model = tiny_cam_model()
    with torch.no_grad():
        model.fc.weight[0, 0] = float("nan")  # finite images, but the scores are NaN
    images = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"the maps of images \[0, 1\] are NaN"):
        cam.grad_cam(model, images, targets=0)


SIGTERM_NET = """
import os
import signal

from torch import nn

CALLS = [0]  # training steps over all the runs of this process


class Net(nn.Module):
    '''Sends its own process SIGTERM (as `timeout` or SLURM would) in the 3rd training step.'''

    def __init__(self, num_classes, in_chans):
        super().__init__()
        self.fc = nn.Linear(in_chans * 8 * 8, num_classes)

    def forward(self, x):
        if self.training:
            CALLS[0] += 1
            if CALLS[0] == 3:
                os.kill(os.getpid(), signal.SIGTERM)
        return self.fc(x.flatten(1))


def make(num_classes, in_chans):
    return Net(num_classes, in_chans)
"""


@pytest.mark.usefixtures("sigterm_fails_the_test")
def test_cli_sigterm_saves_exits_143_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    from helpers.train.__main__ import main
    from tests.test_train_cli import DATA, RUN

    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    (tmp_path / "sigterm_net.py").write_text(SIGTERM_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["--model", "sigterm_net:make", *DATA, "--image-size", "8", *RUN, "--epochs", "1"]
    argv += ["--checkpoint-dir", str(tmp_path / "run")]
    assert main(argv) == 128 + signal.SIGTERM
    assert "training interrupted at epoch 1, step 3 by SIGTERM" in capsys.readouterr().err
    assert train.load_checkpoint(tmp_path / "run" / train.CHECKPOINT_NAME)["step"] == 3
    assert main(argv) == 0
    assert "resuming from" in capsys.readouterr().out
