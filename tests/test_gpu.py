"""On CUDA: torch.compile training, resuming a checkpoint, and NCCL DDP (world size 1).

What the prepared GPU run (benchmarks/gpu_run.py, ``pytest -m gpu``) promises beyond the CPU
suite. Every test here is marked ``gpu`` and skipped without a CUDA device (tests/conftest.py).
"""

from __future__ import annotations

import math

import pytest
import torch

from helpers import train
from helpers.train import distributed, fit
from tests.test_train import FIT, CrashAt, loaders, make_data, make_model, without_time

pytestmark = pytest.mark.gpu
CUDA = {**FIT, "device": "cuda"}


@pytest.fixture
def deterministic(monkeypatch):
    """cuDNN's deterministic kernels, so two runs in one process agree to the last bit."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)


def test_compiled_training_on_cuda_learns_and_stays_close_to_eager():
    """fit(compile=True) with bf16 autocast and channels-last: the model learns, and after
    one epoch its weights are those of the eager run up to bf16 rounding."""
    options = {**CUDA, "epochs": 1, "amp": "bf16", "channels_last": True}
    compiled, eager = make_model(dropout=0.0), make_model(dropout=0.0)
    history = fit(compiled, *loaders(), compile=True, **options)
    fit(eager, *loaders(), **options)
    assert math.isfinite(history[-1]["train_loss"])
    assert next(compiled.parameters()).is_cuda
    for a, b in zip(compiled.parameters(), eager.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0.05, atol=0.02)
    more = fit(make_model(dropout=0.0), *loaders(), compile=True, **{**options, "epochs": 3})
    assert more[-1]["train_loss"] < more[0]["train_loss"]


def test_resume_on_cuda_after_ctrl_c_matches_an_uninterrupted_run(tmp_path, deterministic):
    """The checkpoint (saved from CUDA tensors, loaded to the CPU first) and the CUDA random
    streams (dropout) come back: the resumed run ends with the uninterrupted run's weights."""
    options = {**CUDA, "ema_decay": 0.9}
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
    assert next(model.parameters()).is_cuda
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert without_time(history) == without_time(ref_history)
    ckpt = train.load_checkpoint(tmp_path / "cut" / train.CHECKPOINT_NAME)
    assert len(ckpt["rng"]["cuda"]) == torch.cuda.device_count()  # the CUDA streams saved


@pytest.fixture
def nccl_world_of_one(tmp_path):
    """An NCCL process group of one process (rank 0), set up through a file store."""
    import torch.distributed as dist

    if not dist.is_nccl_available():
        pytest.skip("this torch build has no NCCL")
    torch.cuda.set_device(0)
    dist.init_process_group(
        "nccl", init_method=f"file://{tmp_path / 'store'}", world_size=1, rank=0
    )
    try:
        yield torch.device("cuda", 0)
    finally:
        dist.destroy_process_group()


def test_nccl_ddp_world_size_one_trains_like_a_single_process(nccl_world_of_one):
    """DDP over NCCL with one rank: the all-reduce of the gradients divides by one, so three
    steps give the plain model's weights; the helpers' collectives work over NCCL."""
    dev = nccl_world_of_one
    assert distributed.world() == (1, 0)
    plain = make_model(dropout=0.0).to(dev)
    model, ddp = distributed.wrap_ddp(make_model(dropout=0.0).to(dev), dev, sync_bn=False)
    x, y = (t.to(dev) for t in make_data(48))
    for net, params in ((plain, plain.parameters()), (ddp, model.parameters())):
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
        for i in range(3):
            opt.zero_grad()
            batch = slice(i * 16, (i + 1) * 16)
            loss = torch.nn.functional.cross_entropy(net(x[batch]), y[batch])
            loss.backward()
            opt.step()
    for a, b in zip(plain.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert distributed.all_reduce_sums([1.5, 2.0, 3.0], dev) == [1.5, 2.0, 3.0]
    assert distributed.broadcast_from_main({"acc": 0.5}, dev) == {"acc": 0.5}
