"""helpers.data.resize_splits: the same images, smaller, with clear errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from helpers.data import ImageTensorSet, load_digits, resize_splits


@pytest.fixture(scope="module")
def digits():
    return load_digits(image_size=32, seed=0)


def test_every_split_is_resized_and_labels_kept(digits) -> None:
    small = resize_splits(digits, 16)
    for name in ("train", "val", "test"):
        before, after = getattr(digits, name), getattr(small, name)
        assert after.images.shape == (len(before), 3, 16, 16)
        assert after.images.dtype == torch.uint8
        assert torch.equal(after.labels, before.labels)
    assert small.image_size == 16 and small.source.endswith("resized to 16x16")
    assert small.mean == digits.mean and small.num_classes == 10
    assert digits.train.images.shape[-1] == 32  # the original is untouched


def test_resizing_keeps_the_picture(digits) -> None:
    # 32x32 digits are 8x8 ones upsampled: shrinking to 16 must stay close to a direct 8 -> 16.
    direct = load_digits(image_size=16, seed=0).train.images.float()
    resized = resize_splits(digits, 16).train.images.float()
    assert (resized - direct).abs().mean() < 8  # grey levels out of 255


def test_same_size_is_a_no_op(digits) -> None:
    assert resize_splits(digits, 32) is digits


def test_bad_input_is_named(digits) -> None:
    with pytest.raises(ValueError, match="size"):
        resize_splits(digits, 0)
    with pytest.raises(TypeError, match="DataSplits"):
        resize_splits(digits.train, 16)
    folder_like = dataclasses.replace(digits, val=torch.utils.data.TensorDataset(torch.zeros(1)))
    with pytest.raises(TypeError, match="val is a TensorDataset"):
        resize_splits(folder_like, 16)
    assert isinstance(digits.train, ImageTensorSet)
