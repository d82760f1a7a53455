"""Milliseconds per training step: helpers' models against their twins, and fit() against a loop.

A training step is forward + cross-entropy + backward + SGD update (momentum 0.9), fp32.

- resnet50: ``helpers.models.resnet50`` against ``torchvision.models.resnet50``. The two are
  the same network (the helpers model loads torchvision's state dict with strict=True, which
  is checked here, and both then compute the same logits), so the ratio should be 1 within
  noise.
- resnet20: ``helpers.models.resnet20`` against the plain CIFAR ResNet-20 written out below in
  about 40 lines (He et al. 2016, option A shortcuts); torchvision has no CIFAR ResNets.
- fit() overhead: ``helpers.train.fit`` for one epoch of the same batches against a bare
  ``for x, y in batches: step`` loop, both on resnet20 (fit adds a check of the first batch,
  a host sync every 10 steps and the bookkeeping).

The contenders alternate within every repeat (in alternating order), so load from other
processes hits both alike; medians over ``--repeats`` after ``--warmup`` steps are reported.
Defaults are small enough for a laptop CPU: resnet50 at 8x3x64x64, resnet20 at 32x3x32x32; on
a GPU resnet50 runs 64x3x224x224 and resnet20 128x3x32x32.

    python benchmarks/train_step.py [--repeats 11] [--device cuda] [--threads 1]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision
from common import race
from torch import nn

from helpers import models
from helpers.settings import describe_device
from helpers.settings import device as default_device
from helpers.train import fit

# ---- a plain CIFAR ResNet-20, as one would write it from the paper


class PlainBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.extra = stride, c_out - c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x[:, :, :: self.stride, :: self.stride]  # option A: subsample ...
        if self.extra:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra))  # ... and pad with zeros
        return F.relu(out + shortcut)


class CifarResNet20(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, c_in = [], 16
        for c_out, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(PlainBlock(c_in, c_out, stride if i == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(x.mean(dim=(2, 3)))


# ---- timing


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One SGD training step on a fixed batch."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def batch(n: int, size: int, dev: torch.device, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, size, size, generator=g).to(dev)
    return x, torch.randint(0, classes, (n,), generator=g).to(dev)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def measure(
    dev: torch.device, repeats: int = 11, warmup: int = 3, fit_repeats: int | None = None
) -> list[tuple]:
    """Rows (what, input shape, {"helpers": s, "ref": s}, what the reference is)."""
    gpu = dev.type == "cuda"
    rows = []

    # resnet50 against torchvision, same weights
    torch.manual_seed(0)
    reference = torchvision.models.resnet50().to(dev)
    ours = models.resnet50().to(dev)
    ours.load_state_dict(reference.state_dict(), strict=True)
    n, size = (64, 224) if gpu else (8, 64)
    x, y = batch(n, size, dev, 1000)
    with torch.no_grad():
        same = torch.allclose(ours.eval()(x), reference.eval()(x), atol=1e-4)
    ours.train(), reference.train()
    t = race(
        {"helpers": make_step(ours, x, y), "ref": make_step(reference, x, y)},
        repeats,
        warmup,
        dev,
    )
    rows.append(("resnet50", f"{n}x3x{size}x{size}", t, f"torchvision (same logits: {same})"))

    # resnet20 against the hand-written one
    torch.manual_seed(0)
    ours, reference = models.resnet20().to(dev), CifarResNet20().to(dev)
    assert count(ours) == count(reference) == 269_722, (count(ours), count(reference))
    n = 128 if gpu else 32
    x, y = batch(n, 32, dev, 10)
    t = race(
        {"helpers": make_step(ours, x, y), "ref": make_step(reference, x, y)},
        repeats,
        warmup,
        dev,
    )
    rows.append(("resnet20", f"{n}x3x32x32", t, "hand-written, 269,722 params each"))

    # fit() against a bare loop over the same 10 batches
    steps = 10
    batches = [batch(n, 32, dev, 10) for _ in range(steps)]
    model_fit, model_loop = models.resnet20().to(dev), models.resnet20().to(dev)
    loop_opt = torch.optim.SGD(model_loop.parameters(), lr=0.01, momentum=0.9)

    def bare_loop() -> None:
        for xb, yb in batches:
            loop_opt.zero_grad(set_to_none=True)
            F.cross_entropy(model_loop(xb), yb).backward()
            loop_opt.step()

    def one_fit() -> None:
        fit(
            model_fit,
            batches,
            epochs=1,
            lr=0.01,
            weight_decay=0.0,
            schedule=None,
            decay_norm_and_bias=True,
            device=dev,
            progress=False,
        )

    t = race({"helpers": one_fit, "ref": bare_loop}, fit_repeats or max(5, repeats // 3), 1, dev)
    t = {k: v / steps for k, v in t.items()}
    rows.append(("fit() loop", f"resnet20, {steps} steps", t, "bare for-loop, per step"))

    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default=None, help="default: CUDA if available")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a shared machine, threads spinning against other "
        "processes make timings erratic)",
    )
    args = parser.parse_args()
    dev = torch.device(args.device) if args.device else default_device()
    if dev.type == "cpu":
        torch.set_num_threads(args.threads)
    gpu = dev.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
    print(f"device: {describe_device(dev)}; torch {torch.__version__}, fp32, SGD momentum 0.9")
    print(f"median of {args.repeats} interleaved repeats after {args.warmup} warm-up steps\n")
    rows = measure(dev, args.repeats, args.warmup)
    header = f"{'what':12s} {'input':20s} {'helpers ms':>11s} {'reference ms':>13s} {'ratio':>6s}"
    print(header + "  reference")
    for what, shape, t, ref in rows:
        ratio = t["helpers"] / t["ref"]
        print(
            f"{what:12s} {shape:20s} {t['helpers'] * 1e3:11.2f} {t['ref'] * 1e3:13.2f} "
            f"{ratio:6.3f}  {ref}"
        )
    print("\nratio = helpers / reference: 1 means equal speed; within ~5 % is noise here.")


if __name__ == "__main__":
    main()
