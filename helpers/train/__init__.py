"""The course's training loop: ``fit``, ``evaluate``, ``predict``, ``confusion_matrix``.

One loop for every notebook and for the command line (``python -m helpers.train --help``)::

    history = fit(model, train_loader, val_loader, epochs=30, lr=0.1, schedule="cosine")
    config = TrainConfig(epochs=30, schedule="cosine")   # the same settings as one object
    history = fit(model, train_loader, val_loader, config, lr=0.05)  # keywords override it
    plot_history(history)                 # training curves (helpers.plots.plot_history)
    evaluate(model, test_loader)          # {"loss": ..., "acc": ..., "top5": ...}

A loader is a :class:`helpers.data.DeviceLoader` or anything re-iterable with a length that
yields ``(x, y)`` batches: x (B, C, H, W) float, y (B,) int64 class indices (a torch
``DataLoader`` works). The learning-rate schedule is stepped every iteration (batch), as in
He et al. 2016, whose CIFAR recipe is the default: SGD with momentum 0.9, weight decay 1e-4,
lr 0.1 divided by 10 at 50 % and 75 % of training.

Checkpoints (``checkpoint_dir=``) make training resumable. ``checkpoint.pt`` is rewritten
atomically after every epoch and when you interrupt training: Ctrl-C ("interrupt kernel" in
Jupyter) finishes the current step, saves, then raises ``KeyboardInterrupt``. Calling ``fit``
again with the same model, arguments and folder resumes, and ends with exactly the weights of
an uninterrupted run on the same device (on a GPU cuDNN may also need
``seed_everything(seed, deterministic=True)``). It works because the checkpoint carries the
random-number states, and the loader replays the same batches: ``loader.set_epoch(epoch)`` is
called before every epoch (``DeviceLoader`` has one; for a ``DataLoader`` with a
``DistributedSampler``, the sampler's is called).

Under ``torch.distributed`` (``torchrun``), ``fit`` wraps the model in
``DistributedDataParallel``. Each process needs its own shard of the data
(``DeviceLoader(..., num_replicas=W, rank=r)``); only rank 0 validates and writes
checkpoints; all processes should be seeded alike (the command line does this).

Modules, one job each: ``config`` (TrainConfig: every setting, its help and check),
``fit`` (builds a run from a config), ``loop`` (the epoch loop), ``optim`` (optimiser,
parameter groups, schedules, EMA), ``evaluation`` (evaluate, predict, TTA), ``precision``
(device, autocast, GradScaler, channels-last), ``distributed`` (torchrun, DDP, rank 0),
``progress`` (tqdm.auto bars and meters), ``history`` (the epoch record), ``checkpoint``
(atomic saves, RNG states, resume checks), ``interrupt`` (Ctrl-C, SIGTERM), ``experiments`` (several
models over several seeds, for the notebooks' ablations), ``options`` and ``__main__`` (the
command line, generated from TrainConfig).

The trainer depends on nothing above it: it imports ``helpers.settings``, ``helpers.timing``
and the data and model packages, never ``helpers.measurement``, ``helpers.inspection`` or
``helpers.plots`` (``tests/test_layout.py`` checks this).
"""

from helpers.train.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from helpers.train.config import AMP_MODES, OPTIMIZERS, SCHEDULES, TrainConfig
from helpers.train.evaluation import confusion_matrix, evaluate, predict
from helpers.train.experiments import (
    ExperimentResult,
    describe_difference,
    paired_difference,
    run_experiment,
    summarize,
)
from helpers.train.fit import fit
from helpers.train.history import History, format_record
from helpers.train.interrupt import TrainingInterrupted
from helpers.train.progress import NonFiniteLossError

__all__ = [
    "AMP_MODES",
    "CHECKPOINT_NAME",
    "OPTIMIZERS",
    "SCHEDULES",
    "CheckpointError",
    "ExperimentResult",
    "History",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainingInterrupted",
    "confusion_matrix",
    "describe_difference",
    "evaluate",
    "fit",
    "format_record",
    "load_checkpoint",
    "paired_difference",
    "predict",
    "run_experiment",
    "summarize",
]
