"""Self-checks for notebook 01 (residual blocks)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from helpers.check.core import CheckFailed, exercise, expect, expect_close, expect_shape
from helpers.inspection import gradient_norms
from helpers.models import BasicBlock, create, resnet56

# (in_planes, planes, stride): same shape, both changes, channels only, resolution only.
_BLOCK_CASES = ((16, 16, 1), (16, 32, 2), (16, 32, 1), (32, 32, 2))


def _randomise_batch_norms(block: nn.Module, generator: torch.Generator) -> None:
    # A fresh BN (scale 1, shift 0, mean 0, var 1) would hide a swapped or missing BN.
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=generator))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=generator))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _compare_block(
    make_block: Callable[..., nn.Module], in_planes: int, planes: int, stride: int
) -> float:
    case = f"in_planes={in_planes}, planes={planes}, stride={stride}"
    generator = torch.Generator().manual_seed(in_planes * 100 + planes * 10 + stride)
    reference = BasicBlock(in_planes, planes, stride, shortcut="B")
    _randomise_batch_norms(reference, generator)
    block = make_block(in_planes, planes, stride)
    expect(
        isinstance(block, nn.Module),
        f"{case}: your class should build an nn.Module, got {type(block).__name__}",
    )

    ours, theirs = _n_params(block), _n_params(reference)
    if reference.downsample is None:
        hint = "input and output shapes match here, so the shortcut is x itself (no weights)"
    else:
        hint = "the shape changes here, so the shortcut needs a 1x1 conv (stride, no bias) + BN"
    expect(
        ours == theirs,
        f"{case}: your block has {ours:,} parameters, BasicBlock {theirs:,} ({hint})",
    )

    wanted, given = set(reference.state_dict()), set(block.state_dict())
    missing, unexpected = sorted(wanted - given), sorted(given - wanted)
    expect(
        not missing and not unexpected,
        f"{case}: names differ from BasicBlock's (use conv1, bn1, conv2, bn2 and "
        f"downsample = nn.Sequential(conv, BN) or None); missing {missing}, "
        f"unexpected {unexpected}",
    )
    try:
        block.load_state_dict(reference.state_dict(), strict=True)
    except RuntimeError as err:  # same names, different shapes
        first_line = str(err).strip().splitlines()[-1].strip()
        expect(False, f"{case}: the weights do not fit your layers: {first_line}")

    x = torch.randn(4, in_planes, 8, 8, generator=generator)
    diffs = []
    for mode in ("train", "eval"):  # batch statistics, then running statistics
        block.train(mode == "train")
        reference.train(mode == "train")
        with torch.no_grad():
            expected = reference(x)
            got = block(x)
        expect_shape(got, tuple(expected.shape), f"{case}: output ({mode} mode)")
        try:
            diffs.append(expect_close(got, expected, f"{case}: output ({mode} mode)", atol=1e-5))
        except CheckFailed as failure:
            raise CheckFailed(
                f"{failure} (the order is conv1-bn1-ReLU-conv2-bn2, + shortcut, ReLU)"
            ) from None
    return max(diffs)


@exercise("Residual block with a projection shortcut")
def projection_block(make_block: Callable[..., nn.Module]) -> str:
    """``make_block(in_planes, planes, stride)``: the learner's block class (or factory).

    It must compute what ``helpers.models.BasicBlock(..., shortcut="B")`` computes: checked
    with that block's weights loaded (names conv1, bn1, conv2, bn2, downsample) on inputs
    x: (4, in_planes, 8, 8), in train and eval mode, for a block that keeps the shape, one that
    changes the channels, one that changes the resolution and one that changes both.
    """
    worst = max(_compare_block(make_block, *case) for case in _BLOCK_CASES)
    return (
        f"same outputs as BasicBlock(shortcut='B') in {len(_BLOCK_CASES)} shape cases, "
        f"train and eval mode (max abs diff {worst:.2g})"
    )


def _extra_parameters(depth: int, shortcut: str) -> int:
    with torch.device("meta"):  # parameter counts only: no weights to initialise
        base = create(f"resnet{depth}", shortcut="A")
        other = create(f"resnet{depth}", shortcut=shortcut)
    return _n_params(other) - _n_params(base)


def _expect_count(answer: object, expected: int, hint: str) -> None:
    # Says whether the count is right without giving the right one away.
    expect(
        isinstance(answer, numbers.Integral) and not isinstance(answer, bool),
        f"your answer should be an int, got {type(answer).__name__} {answer!r}",
    )
    expect(int(answer) == expected, f"{int(answer):,} is not right ({hint})")


@exercise("Parameters option B adds to ResNet-110")
def option_b_parameters(answer: int) -> str:
    """The learner's count of the parameters ``resnet110(shortcut="B")`` has beyond option A."""
    expected = _extra_parameters(110, "B")
    _expect_count(
        answer,
        expected,
        "which blocks change shape? each gets a 1x1 conv without bias plus a BN scale and "
        "shift per output channel",
    )
    return (
        f"{answer:,}: only the 2 blocks that change shape get a projection, "
        "16·32 + 2·32 and 32·64 + 2·64, whatever the depth"
    )


@exercise("Parameters option C adds to ResNet-110")
def option_c_parameters(answer: int) -> str:
    """The learner's count of the parameters ``resnet110(shortcut="C")`` has beyond option A."""
    expected = _extra_parameters(110, "C")
    _expect_count(
        answer,
        expected,
        "every one of the 3 x 18 blocks gets a 1x1 conv from its input to its output "
        "channels plus a BN; ResNet-110's first stage already has 16 channels at its input",
    )
    return f"{answer:,}: a 1x1 conv + BN on all 54 blocks; it grows with the depth"


@exercise("The shortcut's factor over 54 blocks with lambda = 0.5")
def scaled_shortcut(answer: float) -> str:
    """The factor of the direct gradient path through 54 blocks of ``x_{l+1} = 0.5 x_l + F(x_l)``.

    With ``x_{l+1} = λ x_l + F(x_l)`` the term without weight layers is ``λ^54 I``.
    """
    expected = 0.5**54
    expect(
        isinstance(answer, numbers.Real) and not isinstance(answer, bool),
        f"answer with a number, got {type(answer).__name__} {answer!r}",
    )
    expect(answer != 1, "1 is the factor for the identity shortcut (λ = 1); here λ = 0.5")
    expect_close(float(answer), expected, "your factor", rtol=1e-6, atol=0.0)
    return (
        f"0.5^54 ≈ {expected:.1e}: a scaled shortcut vanishes over depth, the identity (λ = 1) "
        "passes the gradient unchanged (He et al. 2016b, section 3.1)"
    )


def _zero_init_gradients() -> tuple[int, int]:

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(8, 3, 16, 16, generator=generator)
    labels = torch.randint(0, 10, (8,), generator=generator)
    norms = gradient_norms(resnet56(zero_init_residual=True), images, labels)
    convs = norms[norms["kind"] == "conv"]
    return int((convs["grad_norm"] == 0).sum()), len(convs)


@exercise("Convolutions without a gradient in a zero-initialised ResNet-56")
def zero_init_zero_gradients(answer: int) -> str:
    """How many conv weights of ``resnet56(zero_init_residual=True)`` get a zero gradient."""
    expected, total = _zero_init_gradients()
    _expect_count(
        answer,
        expected,
        "with BN's gamma = 0 after a block's second conv, that block's output ignores both of "
        "its convolutions; which convolutions are not inside a block?",
    )
    return (
        f"{answer} of {total}: both convolutions of all 27 blocks; only the stem's conv (and fc) "
        "get a gradient at the first step, through the identity shortcuts"
    )


MIN_TRAINING_STEPS = 10  # fewer batches seen in training mode than this: not a trained net


def training_steps(model: nn.Module) -> int:
    """How many batches ``model`` has seen in training mode, read from its batch norms.

    Every forward pass in training mode adds one to each BN's ``num_batches_tracked``; a net
    without batch norm gives 0. A fresh net has 0; ``inspection.gradient_norms`` adds 1.
    """
    counts = [
        int(m.num_batches_tracked)
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.num_batches_tracked is not None
    ]
    return max(counts, default=0)


@exercise("Gradient norms of a trained network")
def trained_gradient_norms(
    norms: object, *, model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> str:
    """The learner's ``inspection.gradient_norms(model, images, labels)`` for a trained net.

    ``model`` must have been trained (at least :data:`MIN_TRAINING_STEPS` batches in training
    mode, read from its batch norms), so the gradient norms of a fresh net are refused.
    """
    expect(
        isinstance(norms, pd.DataFrame) and "grad_norm" in norms.columns,
        f"pass the DataFrame from inspection.gradient_norms, got {type(norms).__name__}",
    )
    steps = training_steps(model)
    expect(
        steps >= MIN_TRAINING_STEPS,
        f"this net has seen {steps} batch(es) in training mode: it is (almost) untrained. "
        "Train it first, e.g. helpers.train.fit(your_trained_net, train_loader, epochs=2, "
        "**RECIPE), then compute its gradient norms",
    )
    expected = gradient_norms(model, images, labels)
    expect(
        len(norms) == len(expected),
        f"your table has {len(norms)} layers, the trained net has {len(expected)}: "
        "did you compute the norms of the net you pass as model=?",
    )
    diff = expect_close(
        torch.tensor(norms["grad_norm"].to_numpy()),
        torch.tensor(expected["grad_norm"].to_numpy()),
        "your gradient norms",
        rtol=1e-3,
        atol=1e-6,
    )
    spread = expected["grad_norm"].max() / expected["grad_norm"][expected["grad_norm"] > 0].min()
    return (
        f"same norms (max diff {diff:.2g}) of a net trained for {steps} steps; "
        f"largest / smallest across depth: {spread:.3g}"
    )


@exercise("Warm-up iterations")
def warmup_iterations(answer: int) -> str:
    """Iterations of ``warmup_epochs=1`` on 45,000 training images at batch size 128."""
    expected = math.ceil(45_000 / 128)
    _expect_count(
        answer,
        expected,
        "one epoch is one pass over 45,000 images in batches of 128; the last batch is smaller",
    )
    return f"{answer} iterations, close to the ~400 of He et al.'s ResNet-110 warm-up"
