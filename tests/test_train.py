"""helpers.train: fit, its schedules and checks, resuming from checkpoints, evaluation.

Everything here runs in-process on tiny models and random tensors (torch DataLoaders over
TensorDatasets), so it needs neither helpers.data nor helpers.models. The command line,
kill -9 and torchrun tests are in tests/test_train_cli.py.
"""

from __future__ import annotations

import importlib
import math
import os
import pickle
import signal

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from helpers import plots, train
from helpers.train import (
    CheckpointError,
    History,
    NonFiniteLossError,
    TrainConfig,
    confusion_matrix,
    evaluate,
    fit,
    predict,
)
from helpers.train.optim import make_scheduler as _make_scheduler
from helpers.train.optim import milestone_steps as _milestone_steps

NUM_CLASSES = 3
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine two torch threads
    spinning against each other made a 0.05 s fit take seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def sigint_raises():
    """Ctrl-C raises KeyboardInterrupt during the test, as in a terminal, even when pytest was
    started with SIGINT ignored (a background job, nohup, some CI runners)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def make_data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (n, 2, 4, 4) float with a class-dependent mean in channel 0; y: (n,) int64."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % NUM_CLASSES
    x = torch.randn(n, 2, 4, 4, generator=g) * 0.5
    x[:, 0] += (y.float() - 1.0)[:, None, None] * 2.0
    return x, y


def make_model(seed: int = 0, dropout: float = 0.2) -> nn.Module:
    """A tiny CNN with BatchNorm and Dropout, so RNG and buffers matter for resuming."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(6, NUM_CLASSES),
    )


def loaders(batch_size: int = 16, n: int = 96) -> tuple[DataLoader, DataLoader]:
    x, y = make_data(n)
    # shuffle=True draws from the global torch RNG at every epoch: resuming must restore it.
    train_loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(*make_data(48, seed=1)), batch_size=batch_size)
    return train_loader, val_loader


FIT = {"epochs": 3, "lr": 0.2, "seed": 0, "device": "cpu", "progress": False}


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def without_time(history: History) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in history.records]


# ----------------------------------------------------------------------------------------------
# fit: learning, determinism, options


def test_fit_learns_and_records_every_epoch():
    model = make_model()
    train_loader, val_loader = loaders()
    seen = []
    history = fit(model, train_loader, val_loader, on_epoch_end=seen.append, **FIT)
    assert isinstance(history, History) and len(history) == 3
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert seen == history.records
    for record in history:
        assert set(record) == set(History.COLUMNS)
        assert 0 <= record["train_acc"] <= 1 and 0 <= record["val_acc"] <= 1
        assert record["time"] > 0
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_acc"] > 0.9  # the classes are well separated
    assert evaluate(model, val_loader)["acc"] == pytest.approx(history[-1]["val_acc"])
    assert next(model.parameters()).device == CPU


def test_same_seed_same_weights_and_history():
    runs = []
    for _ in range(2):
        model = make_model()
        history = fit(model, *loaders(), **FIT)
        runs.append((model, without_time(history)))
    assert_same_weights(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_validation_does_not_change_training():
    """Validation runs under fork_rng: with or without it, training draws the same numbers."""
    a, b = make_model(), make_model()
    train_loader, val_loader = loaders()
    fit(a, train_loader, val_loader, **FIT)
    history = fit(b, train_loader, None, **FIT)
    assert_same_weights(a, b)
    assert all(math.isnan(r["val_acc"]) and math.isnan(r["val_loss"]) for r in history)


@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "adamw", "lr": 1e-2, "schedule": "cosine", "warmup_epochs": 0.5},
        {"optimizer": "sgd", "nesterov": True, "schedule": "onecycle"},
        {"schedule": None, "label_smoothing": 0.1, "grad_clip": 1.0, "channels_last": True},
        {"schedule": "step", "milestones": (1, 2), "amp": "bf16", "decay_norm_and_bias": True},
    ],
)
def test_fit_options_train(options):
    model = make_model()
    history = fit(model, *loaders(), **{**FIT, **options})
    assert all(math.isfinite(r["train_loss"]) for r in history)
    assert history[-1]["train_acc"] > 0.5


def test_label_smoothing_is_the_training_loss():
    """One step at a negligible lr: the recorded loss is the smoothed cross-entropy."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(32, NUM_CLASSES))
    x, y = make_data(16)
    expected = F.cross_entropy(model(x), y, label_smoothing=0.3).item()
    history = fit(
        model, [(x, y)], epochs=1, lr=1e-12, label_smoothing=0.3, schedule=None, **_quiet()
    )
    assert history[0]["train_loss"] == pytest.approx(expected, rel=1e-6)
    assert history[0]["lr"] == 1e-12


def _quiet() -> dict:
    return {"device": "cpu", "progress": False}


def test_weight_decay_skips_norm_and_bias_by_default():
    from helpers.train.optim import make_optimizer

    model = make_model()
    model[0].weight.requires_grad_(False)  # frozen parameters stay out of the optimizer
    settings = TrainConfig(epochs=1, lr=0.1, weight_decay=5e-4)
    decay, no_decay = make_optimizer(model, settings).param_groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"])
    assert all(p.ndim == 1 for p in no_decay["params"])  # BatchNorm scales/shifts and biases
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in (decay, no_decay) for p in g["params"]} == trainable
    assert id(model[0].weight) not in trainable
    (everything,) = make_optimizer(
        model, TrainConfig(epochs=1, lr=0.1, weight_decay=5e-4, decay_norm_and_bias=True)
    ).param_groups
    assert everything["weight_decay"] == 5e-4 and len(everything["params"]) == len(trainable)


def test_grad_clip_bounds_the_update():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(32, NUM_CLASSES))
    before = [p.detach().clone() for p in model.parameters()]
    x, y = make_data(16)
    fit(
        model,
        [(x * 100, y)],  # huge inputs, huge gradients
        epochs=1,
        lr=1.0,
        momentum=0.0,
        weight_decay=0.0,
        schedule=None,
        grad_clip=0.01,
        **_quiet(),
    )
    step = torch.cat(
        [(p.detach() - b).flatten() for p, b in zip(model.parameters(), before, strict=True)]
    )
    assert step.norm() == pytest.approx(0.01, rel=1e-4)


def test_optimizer_object_is_used_as_given():
    model = make_model()
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.0},  # frozen by a zero learning rate
            {"params": [p for m in list(model)[1:] for p in m.parameters()], "lr": 0.05},
        ],
        momentum=0.9,
    )
    conv = model[0].weight.detach().clone()
    history = fit(model, *loaders(), optimizer=opt, epochs=2, schedule=None, **_quiet())
    assert torch.equal(model[0].weight, conv)
    assert history[-1]["lr"] == 0.0  # the first group's
    with pytest.raises(ValueError, match=r"lr=0\.1 given together with an optimizer object"):
        fit(model, *loaders(), optimizer=opt, lr=0.1, epochs=1, **_quiet())


def test_set_epoch_is_called_on_the_loader_and_on_a_distributed_sampler():
    x, y = make_data(32)

    class EpochLoader(list):
        epochs_seen: list

        def set_epoch(self, epoch):
            self.epochs_seen.append(epoch)

    loader = EpochLoader([(x[:16], y[:16]), (x[16:], y[16:])])
    loader.epochs_seen = []
    fit(make_model(), loader, epochs=3, **_quiet())
    assert loader.epochs_seen == [0, 1, 2]

    sampler = DistributedSampler(TensorDataset(x, y), num_replicas=1, rank=0, seed=0)
    dl = DataLoader(TensorDataset(x, y), batch_size=8, sampler=sampler)
    fit(make_model(), dl, epochs=2, **_quiet())
    assert sampler.epoch == 1


# ----------------------------------------------------------------------------------------------
# Schedules (stepped per iteration)


def lrs_over(schedule, total=100, warmup=0, milestones=(), lr=0.1, optimizer="sgd"):
    param = nn.Parameter(torch.zeros(1))
    opt = (
        torch.optim.SGD([param], lr=lr, momentum=0.9)
        if optimizer == "sgd"
        else torch.optim.AdamW([param], lr=lr)
    )
    sched = _make_scheduler(
        opt,
        schedule,
        total_steps=total,
        milestone_steps=list(milestones),
        gamma=0.1,
        warmup_steps=warmup,
    )
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
    return np.array(out)


def test_step_schedule_divides_by_ten_at_he_et_al_milestones():
    at = _milestone_steps("step", (0.5, 0.75), epochs=8, steps=8)  # 64 iterations
    assert at == [32, 48]
    assert _milestone_steps("step", (0.5, 0.75), epochs=1, steps=1) == [1, 1]  # never at 0
    lrs = lrs_over("step", total=64, milestones=at)
    np.testing.assert_allclose(lrs[:32], 0.1)
    np.testing.assert_allclose(lrs[32:48], 0.01)
    np.testing.assert_allclose(lrs[48:], 0.001)
    assert _milestone_steps("step", (2, 3), epochs=4, steps=10) == [20, 30]


@pytest.mark.parametrize(
    "milestones", [(0.5, 2), (0.0, 0.5), (1.0,), (0.75, 0.5), (4,), (), (True,)]
)
def test_bad_milestones_are_rejected(milestones):
    with pytest.raises(ValueError, match="milestones"):
        _milestone_steps("step", milestones, epochs=4, steps=10)


def test_cosine_with_warmup():
    lrs = lrs_over("cosine", total=100, warmup=10)
    assert lrs[0] == pytest.approx(0.1 * train.optim.WARMUP_START_FACTOR)
    assert np.all(np.diff(lrs[:11]) > 0)  # linear ramp up
    assert lrs[10] == pytest.approx(0.1)
    assert np.all(np.diff(lrs[10:]) < 0)  # then cosine down towards 0
    assert lrs[-1] == pytest.approx(0.1 * (1 - math.cos(math.pi / 90)) / 2, rel=1e-6)
    assert lrs[55] == pytest.approx(0.05, rel=1e-6)  # half way through the cosine


def test_warmup_then_step_keeps_absolute_milestones():
    lrs = lrs_over("step", total=40, warmup=5, milestones=[20, 30])
    assert lrs[5] == pytest.approx(0.1) and lrs[19] == pytest.approx(0.1)
    assert lrs[20] == pytest.approx(0.01) and lrs[30] == pytest.approx(0.001)


def test_onecycle_peaks_at_lr():
    lrs = lrs_over("onecycle", total=100, lr=0.4)
    assert lrs.max() == pytest.approx(0.4) and lrs[0] < 0.02 and lrs[-1] < 1e-4
    assert lrs_over(None, total=5).tolist() == [0.1] * 5


# ----------------------------------------------------------------------------------------------
# Clear errors before any training step


def test_labels_outside_the_classes_fail_before_training():
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = make_data(32)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\).*from 5 to 7"):
        fit(model, [(x, y + 5)], epochs=1, **_quiet())
    for key, value in model.state_dict().items():  # no step, and BN statistics untouched
        assert torch.equal(value, before[key]), key


def test_inputs_of_the_wrong_shape_fail_before_training():
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _, y = make_data(32)
    with pytest.raises(ValueError, match=r"first training batch, x of shape \(32, 3, 4, 4\)"):
        fit(model, [(torch.randn(32, 3, 4, 4), y)], epochs=1, **_quiet())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize(
    ("batch", "error", "match"),
    [
        (
            (torch.zeros(8, 2, 4, 4, dtype=torch.uint8), torch.zeros(8, dtype=torch.long)),
            TypeError,
            "float",
        ),
        ((torch.zeros(8, 2, 4, 4), torch.zeros(8)), TypeError, "int64 class indices"),
        ((torch.zeros(8, 2, 4, 4), torch.zeros(6, dtype=torch.long)), ValueError, "batch sizes"),
        ((torch.zeros(8, 2, 4, 4),), TypeError, r"pair \(x, y\)"),
    ],
)
def test_malformed_batches(batch, error, match):
    with pytest.raises(error, match=match):
        fit(make_model(), [batch], epochs=1, **_quiet())


def test_model_must_return_logits():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(32, 3)

        def forward(self, x):
            return self.fc(x.flatten(1))[:, :, None]

    x, y = make_data(16)
    with pytest.raises(ValueError, match=r"logits \(B, num_classes\), got shape \(16, 3, 1\)"):
        fit(Bad(), [(x, y)], epochs=1, **_quiet())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"optimizer": "adam"}, "optimizer must be one of"),
        ({"lr": -1.0}, "lr must be a positive number"),
        ({"schedule": "linear"}, "schedule must be one of"),
        ({"amp": "fp16"}, "amp='fp16' needs a CUDA device"),
        ({"amp": "fp8"}, "amp must be"),
        ({"warmup_epochs": 5}, "warmup_epochs"),
        ({"schedule": "onecycle", "warmup_epochs": 1}, "own warm-up"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"grad_clip": 0}, "grad_clip"),
        ({"nesterov": True, "momentum": 0.0}, "nesterov=True needs momentum"),
        ({"sync_bn": True}, "sync_bn=True needs DistributedDataParallel on CUDA"),
        ({"device": "cuda:0"} if not torch.cuda.is_available() else {"seed": -1}, "CUDA|seed"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(
            make_model(),
            loaders()[0],
            **{"epochs": 2, "device": "cpu", "progress": False, **kwargs},
        )


def test_loaders_must_be_reiterable_with_a_length():
    x, y = make_data(16)
    with pytest.raises(TypeError, match="one-shot iterator"):
        fit(make_model(), iter([(x, y)]), epochs=1, **_quiet())

    class NoLength:
        def __iter__(self):
            yield x, y

    with pytest.raises(TypeError, match="must have a length"):
        fit(make_model(), NoLength(), epochs=1, **_quiet())
    with pytest.raises(TypeError, match="iterable of"):
        fit(make_model(), 3, epochs=1, **_quiet())


# ----------------------------------------------------------------------------------------------
# Divergence


def test_exploding_loss_names_epoch_and_step():
    with pytest.raises(NonFiniteLossError, match=r"epoch 1/2, step \d+/6"):
        fit(make_model(dropout=0.0), loaders()[0], epochs=2, lr=1e10, schedule=None, **_quiet())


def test_nan_from_the_model_names_the_exact_step():
    class NanAtCall(nn.Module):
        """Returns NaN logits on its 14th training forward (epoch 3, step 2 of 6)."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(32, NUM_CLASSES)
            self.calls = 0

        def forward(self, x):
            out = self.fc(x.flatten(1))
            if self.training:
                self.calls += 1
                if self.calls == 14:
                    out = out * float("nan")
            return out

    with pytest.raises(NonFiniteLossError, match=r"became nan at epoch 3/3, step 2/6"):
        fit(NanAtCall(), loaders()[0], epochs=3, **_quiet())


# ----------------------------------------------------------------------------------------------
# Checkpoints and resuming


class CrashAt:
    """Wraps a loader and raises RuntimeError at one (epoch, batch), like a process dying."""

    def __init__(self, loader, epoch: int, batch: int, action: str = "crash"):
        self.loader, self.epoch, self.batch, self.action = loader, epoch, batch, action
        self.current = -1

    def __len__(self):
        return len(self.loader)

    def set_epoch(self, epoch):
        self.current = epoch

    def identity(self):
        from helpers.data.core import identity

        return identity(self.loader)  # the same data as the loader it wraps

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if (self.current, i) == (self.epoch, self.batch):
                if self.action == "crash":
                    raise RuntimeError("simulated crash")
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as from a terminal or Jupyter
            yield batch


def reference_run(tmp_path, **kwargs):
    model = make_model()
    train_loader, val_loader = loaders()
    history = fit(model, train_loader, val_loader, **{**FIT, **kwargs})
    return model, history


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path):
    reference, ref_history = reference_run(tmp_path)
    train_loader, val_loader = loaders()
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(
            make_model(),
            CrashAt(train_loader, epoch=1, batch=3),
            val_loader,
            checkpoint_dir=tmp_path,
            **FIT,
        )
    ckpt = train.load_checkpoint(tmp_path / train.CHECKPOINT_NAME)
    # The loader failed between two steps: a checkpoint was saved there, as on Ctrl-C.
    assert (ckpt["epoch"], ckpt["step"]) == (1, 3)
    # A fresh model (as in a new process) and fresh loaders; the checkpoint restores the rest.
    model = make_model(seed=123)
    history = fit(model, *loaders(), checkpoint_dir=tmp_path, **FIT)
    assert_same_weights(model, reference)
    assert without_time(history) == without_time(ref_history)
    assert [p.name for p in tmp_path.iterdir()] == [train.CHECKPOINT_NAME]  # no temp files


def test_ctrl_c_saves_mid_epoch_and_resumes_exactly(tmp_path, sigint_raises):
    reference, ref_history = reference_run(tmp_path)
    train_loader, val_loader = loaders()
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="interrupted at epoch 2, step 4"):
        fit(
            make_model(),
            CrashAt(train_loader, 1, 3, action="sigint"),
            val_loader,
            checkpoint_dir=tmp_path,
            **FIT,
        )
    assert signal.getsignal(signal.SIGINT) is handler  # the usual Ctrl-C is back
    ckpt = train.load_checkpoint(tmp_path / train.CHECKPOINT_NAME)
    assert (ckpt["epoch"], ckpt["step"]) == (1, 4)  # mid-epoch, after a whole step
    model = make_model(seed=123)
    history = fit(model, *loaders(), checkpoint_dir=tmp_path, **FIT)
    assert_same_weights(model, reference)
    assert without_time(history) == without_time(ref_history)


def test_second_ctrl_c_interrupts_at_once(sigint_raises):
    from helpers.train.interrupt import GracefulInterrupt as _GracefulInterrupt

    previous = signal.getsignal(signal.SIGINT)
    with _GracefulInterrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.requested  # the first one only asks the loop to stop
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is previous  # whatever was there before


def test_finished_checkpoint_returns_without_training(tmp_path, capsys):
    model, history = reference_run(tmp_path, checkpoint_dir=tmp_path)
    again = make_model(seed=5)
    calls = []
    history2 = fit(
        again,
        *loaders(),
        checkpoint_dir=tmp_path,
        on_epoch_end=calls.append,
        **{**FIT, "progress": True},
    )
    assert calls == [] and history2.records == history.records
    assert_same_weights(again, model)
    out = capsys.readouterr().out
    assert f"resuming from {tmp_path / train.CHECKPOINT_NAME} (epoch 3)" in out
    assert "all 3 epochs were done already: nothing to train" in out


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    reference_run(tmp_path, checkpoint_dir=tmp_path, epochs=1)
    path = tmp_path / train.CHECKPOINT_NAME
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} is corrupt or truncated"):
        fit(make_model(), *loaders(), checkpoint_dir=tmp_path, **{**FIT, "epochs": 1})
    torch.save({"not": "ours"}, path)
    with pytest.raises(CheckpointError, match=r"is not a helpers\.train checkpoint"):
        fit(make_model(), *loaders(), checkpoint_dir=tmp_path, **{**FIT, "epochs": 1})


def test_checkpoint_from_other_arguments_or_model_is_refused(tmp_path):
    reference_run(tmp_path, checkpoint_dir=tmp_path, epochs=2)
    path = tmp_path / train.CHECKPOINT_NAME
    with pytest.raises(CheckpointError, match=str(path)) as err:
        fit(make_model(), *loaders(), checkpoint_dir=tmp_path, **{**FIT, "lr": 0.1, "epochs": 4})
    message = str(err.value)
    assert "- lr: checkpoint has 0.2, this call has 0.1" in message
    assert "epochs: checkpoint has 3, this call has 4" not in message  # it ran with epochs=2
    assert "epochs: checkpoint has 2, this call has 4" in message

    wider = nn.Sequential(*list(make_model())[:-1], nn.Linear(6, 5))
    with pytest.raises(
        CheckpointError, match=r"tensor shapes differ.*6\.weight \[3, 6\] -> \[5, 6\]"
    ):
        fit(wider, *loaders(), checkpoint_dir=tmp_path, **{**FIT, "epochs": 2})


def test_failed_save_keeps_the_old_checkpoint(tmp_path):
    from helpers.train.checkpoint import save_checkpoint

    path = tmp_path / "c.pt"
    save_checkpoint({"format": "x", "a": torch.ones(2)}, path)
    with pytest.raises((pickle.PicklingError, AttributeError)):  # a lambda cannot be saved
        save_checkpoint({"format": "x", "bad": lambda: 0}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


# ----------------------------------------------------------------------------------------------
# evaluate / predict / confusion_matrix / History


class FixedLogits(nn.Module):
    """Returns the logits stored for each sample index (x holds the index)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("table", logits)

    def forward(self, x):
        return self.table[x.long()]


def test_evaluate_predict_and_confusion_matrix_are_exact():
    g = torch.Generator().manual_seed(0)
    n, k = 50, 7
    logits = torch.randn(n, k, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    model = FixedLogits(logits).train()
    loader = DataLoader(TensorDataset(torch.arange(n).float(), y), batch_size=16)
    metrics = evaluate(model, loader)
    assert metrics["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert metrics["acc"] == (logits.argmax(1) == y).sum().item() / n
    top5 = (logits.topk(5, dim=1).indices == y[:, None]).any(1).sum().item() / n
    assert metrics["top5"] == top5 and metrics["top5"] > metrics["acc"]
    assert model.training  # restored
    preds, targets = predict(model, loader)
    assert preds.dtype == targets.dtype == torch.int64
    assert torch.equal(preds, logits.argmax(1)) and torch.equal(targets, y)
    cm = confusion_matrix(model, loader, k)
    assert cm.dtype == torch.int64 and cm.shape == (k, k) and int(cm.sum()) == n
    np.testing.assert_array_equal(cm.numpy(), sk_confusion_matrix(y, preds, labels=range(k)))
    with pytest.raises(ValueError, match="num_classes=3"):
        confusion_matrix(model, loader, 3)


def test_evaluate_rejects_bad_labels_and_empty_loaders():
    model = FixedLogits(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"evaluation batch 1 holds labels from 0 to 3"):
        evaluate(model, [(torch.arange(4).float(), torch.arange(4))])
    with pytest.raises(ValueError, match="no batches"):
        evaluate(model, [])


def test_history_table_dataframe_and_plot():
    records = [
        {
            "epoch": i,
            "train_loss": 1 / i,
            "train_acc": 0.5 + i / 10,
            "val_loss": 1.5 / i,
            "val_acc": [0.4, 0.7, 0.6][i - 1],
            "lr": 0.1,
            "time": 1.0,
        }
        for i in (1, 2, 3)
    ]
    history = History(records)
    text = repr(history)
    assert text.startswith("History(3 epochs, best val_acc 0.7000 at epoch 2)")
    assert len(text.splitlines()) == 5
    assert history.best("val_loss")["epoch"] == 3
    df = history.to_dataframe()
    assert list(df.columns) == list(History.COLUMNS) and len(df) == 3
    assert "<table" in history._repr_html_()
    long = History([{**records[0], "epoch": i} for i in range(1, 31)])
    assert "..." in repr(long) and len(repr(long).splitlines()) == 13
    figure = plots.plot_history(history, metrics=("loss", "acc", "lr"))
    assert len(figure.axes) == 3
    plt.close(figure)
    with pytest.raises(ValueError, match="metric must be one of"):
        history.best("lr")
    assert repr(History()) == "History(0 epochs)"


@pytest.mark.gpu
def test_fp16_amp_with_grad_scaler_on_cuda(tmp_path):
    model = make_model()
    history = fit(
        model,
        *loaders(),
        epochs=2,
        amp="fp16",
        channels_last=True,
        device="cuda",
        progress=False,
        checkpoint_dir=tmp_path,
        seed=0,
    )
    assert all(math.isfinite(r["train_loss"]) for r in history)
    assert train.load_checkpoint(tmp_path / train.CHECKPOINT_NAME)["scaler"]["scale"] > 0


# ---- amp="auto": chosen by the hardware and a measurement, kept on resume


def test_amp_auto_trains_in_the_measured_precision(monkeypatch, capsys):
    fit_module = importlib.import_module("helpers.train.fit")  # the module, not the function
    from helpers.train.precision import PrecisionChoice

    seen = {}

    def fake_choice(model, input_size, device):
        seen["input_size"] = input_size
        return PrecisionChoice("bf16", True, reason="measured faster (test)")

    monkeypatch.setattr(fit_module, "choose_precision", fake_choice)
    train_loader, val_loader = loaders()
    model = make_model()
    fit(model, train_loader, val_loader, **{**FIT, "epochs": 1}, amp="auto")
    assert seen["input_size"] == (2, 4, 4)  # from the first batch of a DataLoader
    assert "amp='auto': training in bf16+channels_last (measured faster (test))" in (
        capsys.readouterr().out
    )
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_amp_auto_resumes_with_the_checkpoints_precision(monkeypatch, tmp_path, capsys):
    fit_module = importlib.import_module("helpers.train.fit")  # the module, not the function
    from helpers.train.precision import PrecisionChoice

    monkeypatch.setattr(
        fit_module, "choose_precision", lambda *a: PrecisionChoice(None, False, reason="fp32")
    )
    train_loader, val_loader = loaders()
    run = {**FIT, "epochs": 1, "checkpoint_dir": tmp_path, "amp": "auto"}
    fit(make_model(), train_loader, val_loader, **run)

    def must_not_measure(*args):
        raise AssertionError("a resumed run must keep its checkpoint's precision")

    monkeypatch.setattr(fit_module, "choose_precision", must_not_measure)
    fit(make_model(), train_loader, val_loader, **run)  # the finished run, resumed
    assert f"amp='auto': training in fp32 (as in {tmp_path}" in capsys.readouterr().out


def test_amp_auto_is_resolved_by_fit_only():
    from helpers.train.precision import check_amp

    with pytest.raises(ValueError, match="amp='auto' is resolved by fit"):
        check_amp("auto", torch.device("cpu"))


def test_epoch_bar_honours_tqdm_disable(monkeypatch):
    from helpers.train.progress import epoch_bar

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not epoch_bar(True, 0, 1, 3, 0).disable
    assert epoch_bar(False, 0, 1, 3, 0).disable
    monkeypatch.setenv("TQDM_DISABLE", "1")  # how the committed notebooks are executed
    assert epoch_bar(True, 0, 1, 3, 0).disable
