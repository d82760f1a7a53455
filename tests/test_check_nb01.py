"""The notebook 01 self-checks pass on right answers and fail on wrong ones."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from helpers.check import FAIL, PASS, TODO, nb01


class ProjectionBlock(nn.Module):
    """A right answer: BasicBlock with option-B shortcut, written out."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ReluBeforeAdd(ProjectionBlock):
    """Wrong: the ReLU is applied to the residual branch before the addition."""

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return out + (x if self.downsample is None else self.downsample(x))


class ProjectOnChannelsOnly(ProjectionBlock):
    """Wrong: no projection when only the stride changes (the shapes then do not add up)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__(in_planes, planes, stride)
        if in_planes == planes:
            self.downsample = None


class ShortcutWithoutBN(ProjectionBlock):
    """Wrong: the projection is a bare 1x1 convolution."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__(in_planes, planes, stride)
        if self.downsample is not None:
            self.downsample = nn.Sequential(self.downsample[0])


class OtherNames(ProjectionBlock):
    """Right computation, but the shortcut is called `shortcut` instead of `downsample`."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__(in_planes, planes, stride)
        self.shortcut = self.downsample
        del self.downsample

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class NotDone(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        raise NotImplementedError


def test_projection_block_passes_a_right_answer() -> None:
    assert nb01.projection_block(ProjectionBlock).status == PASS


def test_projection_block_fails_wrong_answers() -> None:
    result = nb01.projection_block(ReluBeforeAdd)
    assert result.status == FAIL and "differs" in result.message and "ReLU" in result.message
    result = nb01.projection_block(ProjectOnChannelsOnly)
    assert result.status == FAIL and "stride=2" in result.message and "1x1 conv" in result.message
    result = nb01.projection_block(ShortcutWithoutBN)
    assert result.status == FAIL and "parameters" in result.message
    result = nb01.projection_block(OtherNames)
    assert result.status == FAIL and "downsample" in result.message


def test_projection_block_todo() -> None:
    assert nb01.projection_block(NotDone).status == TODO
    assert nb01.projection_block(...).status == TODO


def test_option_b_parameters() -> None:
    # Two projections (16->32 and 32->64), each a 1x1 conv plus BN scale and shift.
    assert nb01.option_b_parameters(16 * 32 + 2 * 32 + 32 * 64 + 2 * 64).status == PASS
    wrong = nb01.option_b_parameters(16 * 32 + 32 * 64)  # forgot the BNs
    assert wrong.status == FAIL and "2,752" not in wrong.message  # no give-away
    assert nb01.option_b_parameters(2752.0).status == FAIL  # a count is an int
    assert nb01.option_b_parameters(...).status == TODO


def test_option_c_parameters() -> None:
    n = 18  # blocks per stage in ResNet-110

    def projection(c_in: int, c_out: int) -> int:
        return c_in * c_out + 2 * c_out

    right = (
        n * projection(16, 16)
        + projection(16, 32)
        + (n - 1) * projection(32, 32)
        + projection(32, 64)
        + (n - 1) * projection(64, 64)
    )
    assert nb01.option_c_parameters(right).status == PASS
    assert nb01.option_c_parameters(right - n * projection(16, 16)).status == FAIL


def test_scaled_shortcut() -> None:
    assert nb01.scaled_shortcut(0.5**54).status == PASS
    assert nb01.scaled_shortcut(1).status == FAIL
    assert nb01.scaled_shortcut(0.5 * 54).status == FAIL
    assert nb01.scaled_shortcut(...).status == TODO


def test_zero_init_zero_gradients() -> None:
    assert nb01.zero_init_zero_gradients(54).status == PASS
    assert nb01.zero_init_zero_gradients(27).status == FAIL  # only the second convs
    assert nb01.zero_init_zero_gradients(55).status == FAIL  # the stem's conv does get one


def _train_steps(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()


def test_trained_gradient_norms() -> None:
    from helpers.inspection import gradient_norms
    from helpers.models import resnet20

    torch.manual_seed(0)
    model, other = resnet20(), resnet20()
    images, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    _train_steps(model, images, labels, nb01.MIN_TRAINING_STEPS)
    right = gradient_norms(model, images, labels)
    kwargs = dict(model=model, images=images, labels=labels)
    assert nb01.trained_gradient_norms(right, **kwargs).status == PASS
    _train_steps(other, images, labels, nb01.MIN_TRAINING_STEPS)
    assert (
        nb01.trained_gradient_norms(gradient_norms(other, images, labels), **kwargs).status == FAIL
    )
    assert nb01.trained_gradient_norms([1.0, 2.0], **kwargs).status == FAIL


def test_trained_gradient_norms_refuses_an_untrained_net() -> None:
    from helpers.inspection import gradient_norms
    from helpers.models import plain20

    torch.manual_seed(0)
    model = plain20()
    images, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    assert nb01.training_steps(model) == 0
    norms = gradient_norms(model, images, labels)  # right norms, but of a fresh net
    result = nb01.trained_gradient_norms(norms, model=model, images=images, labels=labels)
    assert result.status == FAIL
    assert "untrained" in result.message
    _train_steps(model, images, labels, nb01.MIN_TRAINING_STEPS)
    assert nb01.training_steps(model) >= nb01.MIN_TRAINING_STEPS
    norms = gradient_norms(model, images, labels)
    assert (
        nb01.trained_gradient_norms(norms, model=model, images=images, labels=labels).status == PASS
    )


def test_warmup_iterations() -> None:
    assert nb01.warmup_iterations(352).status == PASS
    assert nb01.warmup_iterations(351).status == FAIL  # forgot the last, smaller batch
    assert nb01.warmup_iterations(400).status == FAIL
