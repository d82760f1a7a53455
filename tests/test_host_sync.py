"""No host synchronisation per training step: the EMA and the DeviceLoader, equal to before.

torch's ``AveragedModel`` copied its CPU counter to the GPU at every update, and the
DeviceLoader copied indices and augmentation parameters from pageable memory once per chunk
and called ``nonzero()``: each makes the host wait for the GPU. The replacements must give
exactly the old results: the EMA the weights of ``AveragedModel``, the loader the batches of
the old per-chunk code (kept below as the reference). On the CPU the absence of syncs is
checked by the calls made (a TorchFunctionMode); on a GPU (``-m gpu``) by CUDA's own sync
debug mode, which raises at any synchronising call.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn
from torch.optim import swa_utils
from torch.overrides import TorchFunctionMode

from helpers.data import Cutout, DeviceLoader, ImageTensorSet, RandomCropFlip
from helpers.data import loader as loader_module
from helpers.train.optim import EMA, ema_model

# Calls that read a device value on the host (a sync on a GPU), or copy between devices.
HOST_READS = {"item", "tolist", "nonzero", "__bool__", "__int__", "__float__", "cpu"}


class Calls(TorchFunctionMode):
    """Names of the tensor functions called inside the ``with`` block."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )  # fmt: skip


def train_steps(model: nn.Module, averages: list, steps: int = 5) -> None:
    """A few SGD steps in training mode (BatchNorm statistics move), each folded into every
    average in ``averages``."""
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(8, 3, 6, 6, generator=g)
        y = torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        for average in averages:
            average.update_parameters(model)


@pytest.mark.parametrize("decay", [0.9, 0.5])
def test_ema_equals_torchs_averaged_model_bit_for_bit(decay):
    model = net()
    old = swa_utils.AveragedModel(
        model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(decay), use_buffers=True
    )
    new = ema_model(model, decay)
    assert isinstance(new, EMA)
    train_steps(model, [old, new])
    want, got = old.state_dict(), new.state_dict()
    assert want.keys() == got.keys()
    assert int(got["n_averaged"]) == 5
    for key in want:
        assert torch.equal(want[key], got[key]), key
    # The average is not simply the model: the test compares something that moved.
    assert not torch.equal(got["module.0.weight"], model[0].weight)
    assert got["module.1.num_batches_tracked"].dtype == torch.long


def test_ema_loads_an_averaged_model_checkpoint_and_carries_on_equally():
    """Checkpoints written before the change (AveragedModel's state dict) resume unchanged."""
    model = net()
    old = swa_utils.AveragedModel(
        model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.8), use_buffers=True
    )
    train_steps(model, [old], steps=2)
    new = EMA(net(), 0.8)
    new.load_state_dict(old.state_dict())
    train_steps(model, [old, new], steps=2)
    for key, value in old.state_dict().items():
        assert torch.equal(value, new.state_dict()[key]), key
    with pytest.raises(ValueError, match="decay must be in"):
        EMA(model, 1.0)


def test_ema_update_reads_nothing_back_from_the_device():
    model, calls = net(), Calls()
    ema = EMA(model, 0.9)
    train_steps(model, [ema], steps=1)  # the first update copies
    with calls:
        ema.update_parameters(model)
    assert not HOST_READS & set(calls.names), calls.names
    assert "_foreach_lerp_" in calls.names
    assert ema.n_averaged.device.type == "cpu"  # a host count, never copied to the device


# --------------------------------------------------------------------------- DeviceLoader


def reference_batches(dl: DeviceLoader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The old DeviceLoader.__iter__ (indices and parameters moved per chunk), verbatim."""
    g = loader_module._epoch_generator(dl.seed, dl.epoch)
    dl.epoch += 1
    n = dl.num_images
    order = torch.randperm(n, generator=g) if dl.shuffle else torch.arange(n)
    params = [t.sample(n, g) for t in dl.transforms]
    c, h, w = dl.images.shape[1:]
    chunk = loader_module._CHUNK_ELEMENTS.get(dl.device.type, loader_module._CHUNK_ELEMENTS_DEFAULT)
    steps_per_chunk = max(1, chunk // (dl.batch_size * c * h * w))
    out = []
    for first in range(0, len(dl), steps_per_chunk):
        slices = [dl._rank_slice(s) for s in range(first, min(first + steps_per_chunk, len(dl)))]
        positions = torch.cat([torch.arange(lo, hi) for lo, hi in slices])
        idx = order[positions].to(dl.device)
        x = dl.images.index_select(0, idx)
        normalised = False
        for transform, drawn in zip(dl.transforms, params, strict=True):
            if not getattr(transform, "on_pixels", False) and not normalised:
                x, normalised = dl._normalise(x), True
            x = transform(x, *(t.index_select(0, positions).to(dl.device) for t in drawn))
        x = x if normalised else dl._normalise(x)
        y = dl.labels.index_select(0, idx)
        sizes = [hi - lo for lo, hi in slices]
        pairs = zip(x.split(sizes), y.split(sizes), strict=True)
        out += [(a.clone(), b.clone()) for a, b in pairs]
    return out


def make_loader(n: int = 70, **kw) -> DeviceLoader:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    data = ImageTensorSet(images, torch.arange(n) % 10)
    options = dict(batch_size=8, mean=(0.5,) * 3, std=(0.25,) * 3, device="cpu", seed=3)
    return DeviceLoader.from_set(data, **{**options, **kw})


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 2 batches (8 images of 3x8x8), so an epoch has several chunks."""
    monkeypatch.setitem(loader_module._CHUNK_ELEMENTS, "cpu", 2 * 8 * 3 * 8 * 8)


CASES = {
    "plain": {"shuffle": False},
    "crop_flip": {"augment": True},
    "crop_flip_cutout": {"transform": [RandomCropFlip(2), Cutout(3)]},
    "drop_last": {"augment": True, "drop_last": True},
    "rank_1_of_3": {"augment": True, "num_replicas": 3, "rank": 1},
    "tiny_last_batch_rank_2": {"augment": True, "num_replicas": 3, "rank": 2, "batch_size": 7},
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize("compact", [True, False], ids=["cpu_flips", "fixed_shape_flips"])
def test_loader_batches_are_exactly_the_old_ones(case, compact, small_chunks, monkeypatch):
    """Both flip paths (the CPU's compact one, the GPU's fixed-shape one) on every case."""
    monkeypatch.setattr(RandomCropFlip, "compact_flips", staticmethod(lambda x: compact))
    for epoch in (0, 1):
        new, old = make_loader(**CASES[case]), make_loader(**CASES[case])
        new.set_epoch(epoch)
        old.set_epoch(epoch)
        got = [(x.clone(), y.clone()) for x, y in new]
        want = reference_batches(old)
        assert len(got) == len(want) == len(new)
        for (gx, gy), (wx, wy) in zip(got, want, strict=True):
            assert torch.equal(gx, wx) and torch.equal(gy, wy)


def test_loader_moves_an_epoch_to_the_device_once_and_never_reads_back(small_chunks, monkeypatch):
    """Transfers per epoch do not grow with the chunks; no device value is read per chunk."""
    monkeypatch.setattr(RandomCropFlip, "compact_flips", staticmethod(lambda x: False))

    def transfers(n: int) -> tuple[int, list[str]]:
        dl, calls = make_loader(n, transform=[RandomCropFlip(2), Cutout(3)]), Calls()
        with calls:
            for _ in dl:
                pass
        return calls.names.count("to"), calls.names

    few, names = transfers(16)  # one chunk
    many, _ = transfers(160)  # ten chunks
    # indices + crop y, crop x, flip + cutout centre: five tensors, once each.
    assert few == many == 5
    assert not HOST_READS & set(names), sorted(HOST_READS & set(names))


# --------------------------------------------------------------------------- on a GPU


@contextlib.contextmanager
def sync_is_an_error():
    """CUDA's sync debug mode: any call that makes the host wait for the GPU raises."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.gpu
def test_on_cuda_an_epoch_of_the_loader_makes_no_host_sync():
    dl = make_loader(2000, transform=[RandomCropFlip(2), Cutout(3)], device="cuda")
    dl.set_epoch(0)
    with sync_is_an_error():
        count = sum(1 for _ in dl)
    assert count == len(dl)
    cpu = make_loader(2000, transform=[RandomCropFlip(2), Cutout(3)])
    for (gx, gy), (cx, cy) in zip(dl, cpu, strict=True):  # epoch 1 on both
        assert torch.equal(gy.cpu(), cy) and torch.allclose(gx.cpu(), cx, atol=1e-6)


@pytest.mark.gpu
def test_on_cuda_ema_updates_make_no_host_sync():
    model = net().cuda()
    ema, old = (
        EMA(model, 0.9),
        swa_utils.AveragedModel(
            model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.9), use_buffers=True
        ),
    )
    ema.update_parameters(model)
    old.update_parameters(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    with sync_is_an_error():
        ema.update_parameters(model)
    old.update_parameters(model)
    for key, value in old.state_dict().items():
        assert torch.equal(value.cpu(), ema.state_dict()[key].cpu()), key
    with sync_is_an_error(), pytest.raises(RuntimeError):
        old.update_parameters(model)  # the counter's copy to the GPU: what EMA removed


@pytest.mark.gpu
def test_on_cuda_a_training_step_with_ema_makes_no_host_sync():
    """The whole step of the 94 % recipe's kind (bf16 autocast, label smoothing, Nesterov SGD,
    one-cycle schedule, EMA) queues GPU work only; the loss and hit count stay on the device
    until the meter reads them back every SYNC_EVERY steps."""
    from helpers.train import TrainConfig, optim
    from helpers.train.loop import Trainer

    dev = torch.device("cuda", torch.cuda.current_device())
    model = net().to(dev)
    cfg = TrainConfig(
        epochs=1, lr=0.1, nesterov=True, schedule="onecycle", label_smoothing=0.2,
        ema_decay=0.9, amp="bf16", device="cuda", progress=False,
    )  # fmt: skip
    opt = optim.make_optimizer(model, cfg)
    trainer = Trainer(
        model=model, optimizer=opt, scheduler=optim.scheduler_for(opt, cfg, 10), scaler=None,
        config=cfg, device=dev, steps_per_epoch=10, run_info={}, ema=optim.ema_model(model, 0.9),
    )  # fmt: skip
    x, y = torch.randn(8, 3, 6, 6, device=dev), torch.randint(0, 3, (8,), device=dev)
    trainer.step(x, y)  # the first step sets up the optimizer's state and CUDA's libraries
    with sync_is_an_error():
        for _ in range(3):
            loss, correct = trainer.step(x, y)
    assert loss.is_cuda and correct.is_cuda and int(trainer.ema.n_averaged) == 4
