"""helpers.train.TrainConfig: one source for fit's keywords, the CLI options and checkpoints.

Also the options that came with it: an EMA of the weights, test-time augmentation in
evaluate, the per-epoch line without validation columns, and the CLI's --test-folder.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import train
from helpers.train import TrainConfig, evaluate, fit, format_record, predict
from helpers.train.__main__ import build_parser, main
from tests.test_train import (
    FIT,
    CrashAt,
    assert_same_weights,
    loaders,
    make_data,
    make_model,
    sigint_raises,  # noqa: F401 (a fixture)
    without_time,
)

FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------
# The dataclass


def test_every_field_has_help_a_check_and_a_cli_option():
    parser = build_parser()
    options = {opt for action in parser._actions for opt in action.option_strings}
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["help"], f.name
        option = "--" + f.name.replace("_", "-")
        assert option in options, option
        if f.default is True:  # booleans that default to True can be switched off
            assert "--no-" + f.name.replace("_", "-") in options
    assert "--no-progress" in options and "--tta" in options


def test_cli_parses_into_the_config_fit_would_build():
    from helpers.train.options import config_from_args

    argv = ["--model", "resnet20", "--data", "digits", "--epochs", "7", "--lr", "0.05"]
    argv += ["--schedule", "none", "--milestones", "2", "4", "--amp", "off", "--no-progress"]
    argv += ["--warmup-epochs", "0.5", "--decay-norm-and-bias", "--tta"]
    cfg = config_from_args(build_parser().parse_args(argv))
    expected = TrainConfig(
        epochs=7,
        lr=0.05,
        schedule=None,
        milestones=(2, 4),
        warmup_epochs=0.5,
        decay_norm_and_bias=True,
        tta=True,
        progress=False,
        seed=0,  # the command line's default
    )
    assert cfg == expected


def test_cli_rejects_a_bad_choice(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["--model", "m", "--data", "d", "--epochs", "1", "--schedule", "x"]
        )
    assert "invalid choice 'x'" in capsys.readouterr().err


def test_keywords_override_a_config_and_unknown_ones_list_the_valid():
    base = TrainConfig(epochs=3, lr=0.2, seed=0, device="cpu", progress=False)
    a, b = make_model(), make_model()
    history_a = fit(a, *loaders(), base)
    history_b = fit(b, *loaders(), **FIT)  # the same settings as keywords
    assert_same_weights(a, b)
    assert without_time(history_a) == without_time(history_b)
    with pytest.raises(TypeError, match=r"unknown training setting\(s\) 'learning_rate'") as err:
        fit(make_model(), *loaders(), base, learning_rate=0.1)
    assert all(name in str(err.value) for name in FIELDS)
    with pytest.raises(TypeError, match="fit needs epochs="):
        fit(make_model(), *loaders(), lr=0.1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"momentum": 1.0}, r"momentum must be a number in \[0, 1\)"),
        ({"gamma": 0}, r"gamma must be a number in \(0, 1\]"),
        ({"progress": 1}, "progress must be True or False"),
        ({"milestones": (0.75, 0.5)}, "milestones must be increasing"),
        ({"milestones": "0.5"}, "milestones must be a sequence"),
        ({"weight_decay": -1e-4}, "weight_decay must be"),
        ({"seed": 1.5}, "seed must be an int"),
        ({"checkpoint_dir": 3}, "checkpoint_dir must be a path"),
        ({"device": "gpu"}, "not a valid torch device"),
    ],
)
def test_config_checks_each_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(epochs=2, **kwargs)


def test_config_is_plain_and_frozen(tmp_path):
    cfg = TrainConfig(epochs=2, device=torch.device("cpu"), checkpoint_dir=tmp_path, amp="off")
    assert cfg.device == "cpu" and cfg.checkpoint_dir == str(tmp_path) and cfg.amp is None
    assert json.loads(json.dumps(cfg.asdict()))["epochs"] == 2  # plain values only
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 0.1


def test_checkpoint_stores_the_config_and_a_resume_names_the_differing_fields(tmp_path):
    cfg = TrainConfig(epochs=2, lr=0.2, seed=0, device="cpu", progress=False)
    fit(make_model(), *loaders(), cfg, checkpoint_dir=tmp_path)
    ckpt = train.load_checkpoint(tmp_path / train.CHECKPOINT_NAME)
    assert ckpt["config"] == dataclasses.replace(cfg, checkpoint_dir=str(tmp_path)).asdict()
    with pytest.raises(train.CheckpointError) as err:
        fit(make_model(), *loaders(), cfg, checkpoint_dir=tmp_path, label_smoothing=0.1, gamma=0.5)
    message = str(err.value)
    assert "- gamma: checkpoint has 0.1, this call has 0.5" in message
    assert "- label_smoothing: checkpoint has 0.0, this call has 0.1" in message
    assert "- lr:" not in message and "epochs" not in message
    # Settings that do not shape the trajectory may change: progress, device, channels_last.
    again = fit(make_model(), *loaders(), cfg, checkpoint_dir=tmp_path, progress=True)
    assert len(again) == 2


# ----------------------------------------------------------------------------------------------
# EMA of the weights


def test_ema_is_the_moving_average_of_the_trained_weights_and_is_validated(tmp_path):
    """Two steps: the EMA is the first step's weights, then decay * them + (1 - decay) * the
    second step's (BatchNorm statistics included); training itself is unchanged."""
    x, y = make_data(32)
    b1, b2 = (x[:16], y[:16]), (x[16:], y[16:])
    quiet = {"epochs": 1, "schedule": None, "seed": 0, "device": "cpu", "progress": False}
    after_one, after_two = make_model(dropout=0.0), make_model(dropout=0.0)
    fit(after_one, [b1], **quiet)
    fit(after_two, [b1, b2], **quiet)
    model, decay = make_model(dropout=0.0), 0.75
    val_loader = loaders()[1]
    history = fit(model, [b1, b2], val_loader, ema_decay=decay, checkpoint_dir=tmp_path, **quiet)
    ckpt = train.load_checkpoint(tmp_path / train.CHECKPOINT_NAME)
    raw = ckpt["model"]
    assert all(torch.equal(raw[k], v) for k, v in after_two.state_dict().items())
    assert int(ckpt["ema"]["n_averaged"]) == 2
    p1, p2, averaged = after_one.state_dict(), after_two.state_dict(), model.state_dict()
    floats = [k for k, v in p2.items() if v.is_floating_point()]
    assert any("running_var" in k for k in floats)
    for key in floats:
        expected = decay * p1[key] + (1 - decay) * p2[key]
        torch.testing.assert_close(averaged[key], expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(averaged["6.weight"], p2["6.weight"])
    assert history[-1]["val_loss"] == pytest.approx(evaluate(model, val_loader)["loss"], rel=1e-6)


@pytest.mark.usefixtures("sigint_raises")
def test_ema_resumes_exactly_after_ctrl_c(tmp_path):
    options = {**FIT, "ema_decay": 0.9}
    reference = make_model()
    ref_history = fit(reference, *loaders(), **options, checkpoint_dir=tmp_path / "ref")
    train_loader, val_loader = loaders()
    with pytest.raises(KeyboardInterrupt, match="interrupted at epoch 2, step 4"):
        fit(
            make_model(),
            CrashAt(train_loader, 1, 3, action="sigint"),
            val_loader,
            checkpoint_dir=tmp_path / "cut",
            **options,
        )
    model = make_model(seed=123)
    history = fit(model, *loaders(), checkpoint_dir=tmp_path / "cut", **options)
    assert_same_weights(model, reference)
    assert without_time(history) == without_time(ref_history)
    cut = train.load_checkpoint(tmp_path / "cut" / train.CHECKPOINT_NAME)["ema"]
    ref = train.load_checkpoint(tmp_path / "ref" / train.CHECKPOINT_NAME)["ema"]
    assert cut.keys() == ref.keys() and all(torch.equal(cut[k], ref[k]) for k in ref)
    with pytest.raises(train.CheckpointError, match=r"ema_decay: checkpoint has 0\.9"):
        fit(make_model(), *loaders(), checkpoint_dir=tmp_path / "cut", **FIT)


# ----------------------------------------------------------------------------------------------
# Horizontal-flip test-time augmentation


class LeftHalf(nn.Module):
    """Logits from the left half of the image only, so a mirrored image scores differently."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(2 * 4 * 2, 3)

    def forward(self, x):
        return self.fc(x[..., :2].flatten(1))


def test_tta_averages_the_softmax_of_the_image_and_its_mirror():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(20, 2, 4, 4, generator=g), torch.randint(0, 3, (20,), generator=g)
    model = LeftHalf()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    with torch.no_grad():
        probs = (model(x).softmax(1) + model(x.flip(-1)).softmax(1)) / 2
    metrics = evaluate(model, loader, tta=True)
    assert metrics["loss"] == pytest.approx(F.nll_loss(probs.log(), y).item(), rel=1e-5)
    assert metrics["acc"] == (probs.argmax(1) == y).sum().item() / len(y)
    plain = evaluate(model, loader)
    assert plain["loss"] != pytest.approx(metrics["loss"], rel=1e-3)
    preds, _ = predict(model, loader, tta=True)
    assert torch.equal(preds, probs.argmax(1))


def test_tta_changes_nothing_for_a_mirror_symmetric_model():
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    loader = loaders()[1]
    with_tta, without = evaluate(model, loader, tta=True), evaluate(model, loader)
    assert with_tta["acc"] == without["acc"]
    assert with_tta["loss"] == pytest.approx(without["loss"], rel=1e-5)


def test_fit_validates_with_tta_when_asked():
    model = make_model()
    history = fit(model, *loaders(), **{**FIT, "tta": True})
    assert history[-1]["val_loss"] == pytest.approx(
        evaluate(model, loaders()[1], tta=True)["loss"], rel=1e-6
    )


# ----------------------------------------------------------------------------------------------
# The epoch line and the command line


def test_epoch_line_has_no_val_columns_without_validation():
    record = {"epoch": 2, "train_loss": 0.5, "train_acc": 0.75, "lr": 0.1, "time": 1.0}
    line = format_record({**record, "val_loss": math.nan, "val_acc": math.nan}, epochs=5)
    assert line == "epoch   2/5  train loss 0.5000 acc 0.7500  lr 1.00e-01  1.0s"
    line = format_record({**record, "val_loss": 0.6, "val_acc": 0.7}, epochs=5)
    assert "val loss 0.6000 acc 0.7000" in line


def test_cli_without_validation_prints_no_nan(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    argv = ["--model", "resnet20", "--data", "digits", "--train-size", "64", "--val-size", "0"]
    argv += ["--test-size", "0", "--image-size", "8", "--batch-size", "32", "--epochs", "1"]
    assert main([*argv, "--no-progress"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch")]
    assert line.startswith("epoch   1/1  train loss") and "nan" not in line and "val" not in line


def test_cli_image_folder_with_a_separate_test_folder(tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    g = torch.Generator().manual_seed(0)
    for split, count in (("train", 10), ("test", 3)):
        for label, name in enumerate(("dark", "light")):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = torch.randint(0, 100, (8, 8, 3), generator=g) + 150 * label
                Image.fromarray(pixels.to(torch.uint8).numpy()).save(
                    tmp_path / split / name / f"{i}.png"
                )
    out = tmp_path / "metrics.json"
    argv = ["--model", "resnet20", "--image-folder", str(tmp_path / "train"), "--image-size", "8"]
    argv += ["--test-folder", str(tmp_path / "test"), "--val-size", "4", "--batch-size", "8"]
    assert main([*argv, "--epochs", "1", "--no-progress", "--test", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert "16/4/6" in results["data_source"]  # all 6 test images come from the test folder
    assert results["config"]["epochs"] == 1 and results["history"][0]["epoch"] == 1
    argv = ["--model", "resnet20", "--data", "digits", "--test-folder", str(tmp_path / "test")]
    assert main([*argv, "--epochs", "1"]) == 1
    assert "--test-folder goes with --image-folder" in capsys.readouterr().err
