"""Self-checks for notebook 00 (set-up and tour)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms.v2 import functional as TF

from helpers.check.core import exercise, expect, expect_close
from helpers.models import resnet20
from helpers.train import confusion_matrix


@exercise("Parameters of ResNet-20's stem")
def stem_parameters(answer: int) -> str:
    """The learner's hand count of ResNet-20's first conv + BatchNorm parameters."""
    model = resnet20(num_classes=10)
    expected = sum(p.numel() for m in (model.conv1, model.bn1) for p in m.parameters())
    expect_close(answer, expected, "your count", rtol=0.0, atol=0.0)
    return f"{answer:,} = 3·3·3·16 conv weights (no bias) + 16 BN scales + 16 BN shifts"


@exercise("Normalising a uint8 batch")
def normalize(
    fn: Callable[[torch.Tensor, Sequence[float], Sequence[float]], torch.Tensor],
) -> str:
    """The learner's ``fn(images_uint8, mean, std)`` against torchvision's normalize.

    images_uint8: (N, 3, H, W) uint8 in [0, 255]; returns (N, 3, H, W) float32.
    """
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=generator)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # CIFAR-10's statistics
    expected = TF.normalize(images.float() / 255.0, list(mean), list(std))
    result = fn(images, mean, std)
    expect(
        isinstance(result, torch.Tensor) and result.dtype == torch.float32,
        f"return a float32 tensor, got {getattr(result, 'dtype', type(result).__name__)}",
    )
    diff = expect_close(result, expected, "your normalised batch", atol=1e-5)
    return f"matches torchvision.transforms.v2.functional.normalize (max diff {diff:.1e})"


@exercise("What an invalid COURSE_MODE does")
def invalid_mode(raised: BaseException) -> str:
    """The exception the learner caught from ``settings.mode()`` with ``COURSE_MODE=fast``
    (or the older ``COURSE_QUICK=2``)."""
    expect(
        isinstance(raised, BaseException),
        f"pass the exception you caught (`except Exception as err: raised = err`), got "
        f"{type(raised).__name__} {raised!r}",
    )
    expect(
        isinstance(raised, ValueError),
        f"{type(raised).__name__} is not what settings.mode() raises for an unknown mode; did "
        "you set the variable before calling it?",
    )
    names = ("COURSE_MODE" in str(raised), "COURSE_QUICK" in str(raised))
    expect(any(names), "that ValueError does not come from settings.mode()")
    variable = "COURSE_MODE" if names[0] else "COURSE_QUICK"
    return f"a ValueError that names {variable}: a typo stops you instead of silently training"


@exercise("The classes the model confuses most")
def most_confused(pair: tuple[int, int], *, model: torch.nn.Module, loader: object) -> str:
    """The learner's ``(true, predicted)`` pair: the largest off-diagonal confusion count.

    Recomputed with ``helpers.train.confusion_matrix(model, loader, C)``; any pair tied for
    the largest count is right.
    """
    expect(
        isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(i, int) for i in pair),
        f"answer with a pair of ints (true class, predicted class), got {pair!r}",
    )
    num_classes = model.fc.out_features
    matrix = torch.as_tensor(confusion_matrix(model, loader, num_classes)).clone()
    matrix.fill_diagonal_(0)  # correct predictions are not confusions
    true, predicted = pair
    expect(true != predicted, "a class predicted as itself is a correct answer, not a confusion")
    expect(
        0 <= true < num_classes and 0 <= predicted < num_classes,
        f"class indices are 0 to {num_classes - 1}, got {pair}",
    )
    largest = int(matrix.max())
    count = int(matrix[true, predicted])
    expect(
        count == largest,
        f"{true} predicted as {predicted} happens {count} times; another pair happens "
        f"{largest} times (rows are the true classes, columns the predictions)",
    )
    return f"{true} is mistaken for {predicted} {count} times, more than any other pair"
