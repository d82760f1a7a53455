"""torch.distributed for the trainer: torchrun set-up, DDP wrapping, sharding checks, rank 0.

Under ``torchrun`` every process runs the same program; rank 0 alone validates, writes
checkpoints and prints. Gradients are averaged by ``DistributedDataParallel``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from helpers.train.precision import resolve_device

__all__ = [
    "all_reduce_sums",
    "broadcast_from_main",
    "check_sharded",
    "init_from_env",
    "printer",
    "set_epoch",
    "world",
    "wrap_ddp",
]


def world() -> tuple[int, int]:
    """(world size, rank) under torch.distributed, else (1, 0)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def init_from_env(device: torch.device | str | None) -> tuple[int, int, torch.device]:
    """(world size, rank, device): the process group from torchrun's environment variables
    (NCCL on CUDA, one GPU per process; gloo on the CPU), or (1, 0, device) without it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world_size == 1:
        return 1, 0, dev
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return world_size, rank, dev


def printer(is_main: bool) -> Callable[..., None]:
    """``print`` on rank 0, a no-op elsewhere."""
    return print if is_main else (lambda *args, **kwargs: None)


def wrap_ddp(model: nn.Module, device: torch.device, sync_bn: bool) -> tuple[nn.Module, nn.Module]:
    """(model, DDP wrapper): the model with SyncBatchNorm if asked, and its wrapper."""
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index] if device.type == "cuda" else None
    return model, nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _sampler(loader: Any) -> Any:
    return getattr(loader, "sampler", None)


def set_epoch(loader: Any, epoch: int) -> None:
    """Make the epoch's shuffle and augmentation a function of the epoch (for resuming)."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif hasattr(_sampler(loader), "set_epoch"):
        _sampler(loader).set_epoch(epoch)


def check_sharded(loader: Any, world_size: int) -> None:
    """Warn when a training loader shows no sign of sharding; refuse a wrong shard count."""
    replicas = getattr(loader, "num_replicas", None)
    if replicas is None:
        replicas = getattr(_sampler(loader), "num_replicas", None)
    if replicas is None:
        warnings.warn(
            f"training on {world_size} processes, but train_loader ({type(loader).__name__}) "
            "shows no sign of sharding, so every process may see the same batches: use "
            "DeviceLoader(num_replicas=, rank=) or a DistributedSampler",
            stacklevel=4,
        )
    elif replicas != world_size:
        raise ValueError(
            f"train_loader is sharded over {replicas} processes, but the world size is {world_size}"
        )


def all_reduce_sums(values: list[float], device: torch.device) -> list[float]:
    """The sums of ``values`` over all processes (float64)."""
    totals = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    return totals.tolist()


def broadcast_from_main(obj: Any, device: torch.device) -> Any:
    """Rank 0's ``obj`` on every process."""
    shared = [obj]
    dist.broadcast_object_list(shared, src=0, device=device)
    return shared[0]
