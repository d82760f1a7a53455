"""helpers.data.load_quick_shapes: the easy shapes set notebook 07 trains on in quick mode."""

from __future__ import annotations

import pytest
import torch

from helpers import data


def test_the_splits_are_make_shapes_with_load_shapes_seeds() -> None:
    splits = data.load_quick_shapes(train_size=24, test_size=8, seed=1)
    options = {"classes": data.QUICK_SHAPE_CLASSES, "n_blobs": 1, "n_lines": 1}
    for split, n, seed in ((splits.train, 24, 3), (splits.test, 8, 5)):
        want = data.make_shapes(n, seed=seed, **options)
        assert torch.equal(split.images, want.images) and torch.equal(split.labels, want.labels)
        assert torch.equal(split.boxes, want.boxes)
    assert splits.train.images.shape == (24, 3, 32, 32) and splits.test.boxes.shape == (8, 4)
    assert splits.val is None and splits.name == "shapes" and splits.flip
    assert splits.classes == ["circle", "square", "triangle", "cross"]
    assert splits.num_classes == 4 and splits.image_size == 32
    assert (splits.mean, splits.std) == data.channel_stats(splits.train.images)


def test_the_source_says_what_was_drawn() -> None:
    splits = data.load_quick_shapes(train_size=2500, test_size=8)  # 2,500: the thousands comma
    assert splits.source == (
        "shapes, quick mode: 4 classes, 1 blob and 1 line of clutter (3 and 3 in the full set), "
        "32x32, 2,500/8 train/test (seed 0)"
    )
    more = data.load_quick_shapes(train_size=4, test_size=4, n_blobs=2, n_lines=0)
    assert "2 blobs and 0 lines of clutter" in more.source


def test_bad_arguments_are_named() -> None:
    for kwargs, message in (
        ({"train_size": 0}, "train_size must be an int >= 1"),
        ({"test_size": 2.5}, "test_size must be an int >= 1"),
        ({"n_blobs": -1}, "n_blobs must be an int >= 0"),
        ({"seed": "0"}, "seed must be an int"),
        ({"classes": ["circle", "hexagon"]}, "classes must be 2\\+ distinct names"),
        ({"classes": ["circle"]}, "classes must be 2\\+ distinct names"),
    ):
        with pytest.raises(ValueError, match=message):
            data.load_quick_shapes(**kwargs)
