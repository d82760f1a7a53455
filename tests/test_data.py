"""Tests of helpers.data: containers, offline sets, real-dataset errors, ImageFolder, DeviceLoader.

Nothing here downloads: the CIFAR path is exercised on a tiny fake CIFAR-10 directory in
torchvision's pickle format (the md5 checksums torchvision checks are patched to the fake
files' own), and "offline" is simulated by making urllib's urlopen raise URLError.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision.transforms import v2

import helpers.data as hd
from helpers.data import (
    DatasetCorruptError,
    DatasetUnavailableError,
    DeviceLoader,
    ImageTensorSet,
)

# --------------------------------------------------------------------------- helpers


def random_set(n: int = 50, c: int = 3, size: int = 8, seed: int = 0) -> ImageTensorSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8, generator=g)
    return ImageTensorSet(images, torch.arange(n))


def loader(data: ImageTensorSet, **kw) -> DeviceLoader:
    c = data.images.shape[1]
    options = dict(batch_size=8, mean=(0.5,) * c, std=(0.25,) * c, device="cpu")
    return DeviceLoader.from_set(data, **{**options, **kw})


def batches(dl: DeviceLoader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in dl]


# --------------------------------------------------------------------------- containers


def test_image_tensor_set_is_a_dataset_and_subsets():
    data = random_set(10)
    image, label = data[3]
    assert image.shape == (3, 8, 8) and image.dtype == torch.uint8 and label == 3
    sub = data.subset([7, 2])
    assert len(sub) == 2 and sub.labels.tolist() == [7, 2]
    assert torch.equal(sub.images[0], data.images[7])


@pytest.mark.parametrize(
    ("images", "labels", "error", "match"),
    [
        (torch.zeros(4, 3, 8, 8), torch.arange(4), TypeError, "uint8"),
        (torch.zeros(4, 8, 8, 3, dtype=torch.uint8), torch.arange(4), ValueError, "channels-last"),
        (torch.zeros(4, 8, 8, dtype=torch.uint8), torch.arange(4), ValueError, "4-D"),
        (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.arange(5), ValueError, "4 images but 5"),
        (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.arange(4).int(), TypeError, "int64"),
        (np.zeros((4, 3, 8, 8), np.uint8), torch.arange(4), TypeError, "torch.Tensor"),
    ],
)
def test_image_tensor_set_rejects_bad_input(images, labels, error, match):
    with pytest.raises(error, match=match):
        ImageTensorSet(images, labels)


def test_image_tensor_set_checks_boxes():
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        ImageTensorSet(
            torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.arange(4), torch.zeros(3, 4)
        )


def test_channel_stats_match_torch():
    data = random_set(20)
    mean, std = hd.channel_stats(data.images, chunk=7)
    x = data.images.double() / 255
    assert mean == pytest.approx(x.mean(dim=(0, 2, 3)).tolist(), abs=1e-4)
    assert std == pytest.approx(
        x.transpose(0, 1).flatten(1).std(dim=1, correction=0).tolist(), abs=1e-4
    )


# --------------------------------------------------------------------------- shapes and digits


def test_shapes_are_deterministic_with_boxes_around_objects():
    a = hd.make_shapes(300, seed=1)
    b = hd.make_shapes(300, seed=1)
    c = hd.make_shapes(20, seed=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.boxes, b.boxes)
    assert not torch.equal(a.images[:20], c.images)
    assert a.images.shape == (300, 3, 32, 32) and a.images.dtype == torch.uint8
    counts = torch.bincount(a.labels, minlength=len(hd.SHAPE_CLASSES))
    assert counts.min() > 300 / 6 * 0.6  # every class is well represented
    x0, y0, x1, y1 = a.boxes.unbind(1)
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 31).all() and (y1 <= 31).all()
    width, height = x1 - x0 + 1, y1 - y0 + 1
    assert (width >= 0.36 * 32 * 0.7 - 1).all() and (width <= 0.72 * 32 + 2).all()
    circles = a.labels == hd.SHAPE_CLASSES.index("circle")
    assert ((width - height)[circles].abs() <= 1).all()  # a circle's box is square


def object_extent(image: torch.Tensor) -> torch.Tensor:
    """(x_min, y_min, x_max, y_max) of the pixels at least half covered by the object.

    image: (3, S, S) float 0-255 drawn without clutter or noise: each background channel is a
    linear gradient clipped to [0, 255], and objects keep off the outermost pixel ring. Fit
    the gradient to that ring's unclipped pixels; the object is where the residual is at
    least half the largest residual (the object's flat colour against the background).
    """
    size = image.shape[-1]
    ys, xs = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
    design = torch.stack([torch.ones_like(xs), xs, ys], -1).reshape(-1, 3)
    ring = ((xs == 0) | (ys == 0) | (xs == size - 1) | (ys == size - 1)).reshape(-1)
    residual = torch.zeros(size * size)
    for v in image.reshape(3, -1):
        use = ring & (v > 0) & (v < 255)
        if use.sum() >= 3:
            coef = torch.linalg.lstsq(design[use], v[use, None]).solution
            predicted = (design @ coef)[:, 0].clamp(0, 255)
        else:  # the whole channel is clipped: a constant
            predicted = v[ring].median().expand_as(v)
        residual = torch.maximum(residual, (predicted - v).abs())
    ys, xs = (residual.reshape(size, size) >= 0.5 * residual.max()).nonzero(as_tuple=True)
    return torch.stack([xs.min(), ys.min(), xs.max(), ys.max()]).float()


def test_shapes_boxes_match_the_drawn_objects():
    data = hd.make_shapes(64, seed=3, noise=0.0, n_blobs=0, n_lines=0)
    error = torch.stack([object_extent(img) for img in data.images.float()]) - data.boxes
    assert error.abs().max() <= 1  # anti-aliased edges: a pixel either way at most
    assert error.abs().mean() < 0.2  # and mostly exact (an off-by-one convention fails this)


def test_shapes_draw_fast():
    start = time.perf_counter()
    hd.make_shapes(2000, seed=0)
    assert time.perf_counter() - start < 5.0  # ~0.2 s alone; generous for a busy 2-core CI


def test_load_shapes_split_sizes_and_independent_seeds():
    small = hd.load("shapes", train_size=120, val_size=40, test_size=30)
    larger = hd.load("shapes", train_size=160, val_size=40, test_size=30)
    assert (len(small.train), len(small.val), len(small.test)) == (120, 40, 30)
    assert torch.equal(small.test.images, larger.test.images)  # test set does not move
    assert small.train.boxes is not None and small.num_classes == 6 and small.flip
    assert small.mean == hd.channel_stats(small.train.images)[0]
    with pytest.raises(ValueError, match=r"val_size \(shapes is drawn, not split: a count\)"):
        hd.load("shapes", val_size=0.1)


def test_load_digits_upsampled_three_channels():
    d = hd.load("digits")
    assert d.train.images.shape[1:] == (3, 32, 32)
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    assert d.classes == [str(i) for i in range(10)] and not d.flip
    assert torch.equal(d.train.images[:, 0], d.train.images[:, 2])  # grey repeated
    grey = hd.load("digits", in_chans=1, image_size=16, seed=1)
    assert grey.train.images.shape[1:] == (1, 16, 16) and len(grey.mean) == 1
    assert not torch.equal(hd.load("digits", seed=1).test.labels, d.test.labels)
    with pytest.raises(ValueError, match="in_chans"):
        hd.load("digits", in_chans=2)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match=r"cifar10.*shapes"):
        hd.load("imagenet")


# --------------------------------------------------------- CIFAR: missing, offline, corrupt, fake


def test_cifar_missing_without_download_says_what_and_how(tmp_path):
    with pytest.raises(DatasetUnavailableError) as info:
        hd.load("cifar10", root=tmp_path, download=False)
    message = str(info.value)
    assert "data_batch_1" in message and str(tmp_path / "cifar-10-batches-py") in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "COURSE_DATA" in message
    assert isinstance(info.value, FileNotFoundError)


@pytest.fixture
def offline(monkeypatch):
    """Make every urllib request fail the way it does without a network.

    Downloads are switched back on (the suite sets COURSE_OFFLINE=1), so that these tests
    exercise the real download path and its failure.
    """
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def test_cifar_download_offline_gives_clear_error(tmp_path, offline):
    with pytest.raises(DatasetUnavailableError) as info:
        hd.load("cifar100", root=tmp_path, download=True)
    message = str(info.value)
    assert "downloading it failed" in message and "URLError" in message
    assert "cifar-100-python.tar.gz" in message and str(tmp_path) in message
    assert isinstance(info.value.__cause__, urllib.error.URLError)


def test_gtsrb_download_offline_gives_clear_error(tmp_path, offline):
    with pytest.raises(DatasetUnavailableError, match=r"GTSRB.*Training"):
        hd.load("gtsrb", root=tmp_path, download=True)
    with pytest.raises(DatasetUnavailableError, match=r"GTSRB-Training_fixed\.zip"):
        hd.load("gtsrb", root=tmp_path, download=False)


def test_truncated_cifar_file_is_named(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"]:
        (folder / name).write_bytes(b"\x80\x04 truncated")
    (folder / "test_batch").write_bytes(b"")
    (folder / "batches.meta").write_bytes(b"")
    with pytest.raises(DatasetCorruptError) as info:
        hd.load("cifar10", root=tmp_path, download=False)
    assert str(folder / "data_batch_1") in str(info.value) and "md5" in str(info.value)


def write_fake_cifar10(root: Path, per_batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny CIFAR-10 directory in torchvision's format: pickled dicts of (N, 3072) rows."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)  # R plane, G, B
        labels = [i % 10 for i in range(per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
        written[name] = data
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return written


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def trust_fake_cifar10(monkeypatch, folder: Path) -> None:
    """torchvision verifies the real files' md5: point it at the fake files' checksums."""
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[n, md5(folder / n)] for n, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[n, md5(folder / n)] for n, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / "batches.meta")})


def test_fake_cifar10_loads_through_torchvision(tmp_path, monkeypatch):
    written = write_fake_cifar10(tmp_path, per_batch=20)
    trust_fake_cifar10(monkeypatch, tmp_path / "cifar-10-batches-py")

    splits = hd.load("cifar10", root=tmp_path, download=False, val_size=20)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (80, 20, 20)
    assert splits.classes == [f"class{i}" for i in range(10)] and splits.flip
    assert splits.mean == hd.CIFAR10_MEAN and "CIFAR-10" in splits.source
    assert torch.bincount(splits.val.labels).tolist() == [2] * 10  # stratified
    # Test images keep CIFAR's layout: row = 1024 red, 1024 green, 1024 blue values.
    expected = torch.from_numpy(written["test_batch"]).view(20, 3, 32, 32)
    assert torch.equal(splits.test.images, expected)

    again = hd.load("cifar10", root=tmp_path, download=False, val_size=20)
    assert torch.equal(again.val.images, splits.val.images)  # fixed seed, same split
    quick = hd.course_data(
        "cifar10",
        quick=True,
        root=tmp_path,
        quick_train_size=30,
        quick_val_size=10,
        quick_test_size=10,
    )
    assert (len(quick.train), len(quick.val), len(quick.test)) == (30, 10, 10)
    assert "FALLBACK" not in quick.source
    # A size the caller names wins over quick mode's default (it used to raise a TypeError).
    sized = hd.course_data("cifar10", quick=True, root=tmp_path, quick_train_size=30, val_size=5)
    assert (len(sized.train), len(sized.val)) == (30, 5)


def write_fake_gtsrb(root: Path) -> None:
    """GTSRB's layout in miniature: 3 classes x 3 tracks x 4 PPM photos, 6 test photos + CSV.

    Every track has its own colour (class k, track t -> (40 + 60 k, 50 + 60 t, 90)), so a
    test can tell which track an image came from after resizing.
    """
    train = root / "gtsrb" / "GTSRB" / "Training"
    for k in range(3):
        (train / f"{k:05d}").mkdir(parents=True)
        for t in range(3):
            for i in range(4):
                size = (30 + i, 34 - i)
                image = Image.new("RGB", size, (40 + 60 * k, 50 + 60 * t, 90))
                image.save(train / f"{k:05d}" / f"{t:05d}_{i:05d}.ppm")
    test = root / "gtsrb" / "GTSRB" / "Final_Test" / "Images"
    test.mkdir(parents=True)
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i in range(6):
        Image.new("RGB", (40, 40), (10, 20, 30 * i)).save(test / f"{i:05d}.ppm")
        rows.append(f"{i:05d}.ppm;40;40;5;5;35;35;{i % 3}")
    (root / "gtsrb" / "GT-final_test.csv").write_text("\n".join(rows) + "\n")


def test_fake_gtsrb_holds_out_whole_tracks(tmp_path):
    write_fake_gtsrb(tmp_path)
    splits = hd.load("gtsrb", root=tmp_path, download=False, val_size=8)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (28, 8, 6)
    assert splits.train.images.shape[1:] == (3, 32, 32) and not splits.flip
    assert splits.num_classes == 43 and splits.classes[14] == "stop"
    assert splits.test.labels.tolist() == [0, 1, 2, 0, 1, 2]

    def tracks(images: torch.Tensor) -> set[tuple[int, int]]:
        return {tuple(c) for c in images[:, :2, 16, 16].tolist()}

    val_tracks = tracks(splits.val.images)
    assert len(val_tracks) == 2 and not val_tracks & tracks(splits.train.images)
    assert splits.mean == hd.channel_stats(splits.train.images)[0]


@pytest.mark.parametrize("downloads_off", ["0", "1"])
def test_cifar10_archive_copied_in_is_extracted_offline(
    tmp_path, monkeypatch, offline, downloads_off
):
    # data/README.md: "copy cifar-10-python.tar.gz into data/" works without a network,
    # with COURSE_OFFLINE=1 too.
    monkeypatch.setenv("COURSE_OFFLINE", downloads_off)
    write_fake_cifar10(tmp_path, per_batch=10)
    folder = tmp_path / "cifar-10-batches-py"
    trust_fake_cifar10(monkeypatch, folder)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    shutil.rmtree(folder)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "tgz_md5", md5(archive))
    splits = hd.load("cifar10", root=tmp_path, val_size=10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (40, 10, 10)


# --------------------------------------------------------------------------- course_data


def test_course_data_quick_falls_back_loudly(tmp_path, capsys, offline):
    splits = hd.course_data(
        "cifar10",
        quick=True,
        root=tmp_path,
        quick_train_size=120,
        quick_val_size=30,
        quick_test_size=30,
    )
    printed = capsys.readouterr().out
    assert "CIFAR-10 not available" in printed
    assert "quick mode falls back to the offline 'shapes' set" in printed
    assert "numbers below are not CIFAR-10 results" in printed
    assert splits.name == "shapes" and "FALLBACK" in splits.source
    assert (len(splits.train), len(splits.val), len(splits.test)) == (120, 30, 30)


def test_course_data_full_mode_reraises(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="data_batch_1"):
        hd.course_data("cifar10", quick=False, root=tmp_path, download=False)


def test_course_data_offline_digits_is_kept_whole():
    splits = hd.course_data("digits", quick=True)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 1797


# --------------------------------------------------------------------------- ImageFolder


def make_folder(root: Path, per_class: int = 10) -> Path:
    """Three classes of solid-colour PNGs of assorted sizes (class 0 red, 1 green, 2 blue)."""
    for k, name in enumerate(["red", "green", "blue"]):
        (root / name).mkdir(parents=True)
        colour = [0, 0, 0]
        colour[k] = 200
        for i in range(per_class):
            size = (20 + 3 * i, 16 + 2 * i)
            Image.new("RGB", size, tuple(colour)).save(root / name / f"{i}.png")
    return root


def test_image_folder_as_tensors(tmp_path):
    root = make_folder(tmp_path / "imgs")
    splits = hd.load_image_folder(root, image_size=16, val_size=6, test_size=6)
    assert isinstance(splits.train, ImageTensorSet) and splits.classes == ["blue", "green", "red"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (18, 6, 6)
    assert splits.train.images.shape[1:] == (3, 16, 16)
    for images, labels in ((splits.train.images, splits.train.labels),):
        channel = {0: 2, 1: 1, 2: 0}  # blue, green, red -> which RGB channel is lit
        for img, label in zip(images, labels, strict=True):
            assert img[channel[int(label)]].min() == 200 and img.sum(0).max() == 200
    same = hd.load_image_folder(root, image_size=16, val_size=6, test_size=6)
    assert torch.equal(same.val.labels, splits.val.labels) and torch.equal(
        same.val.images, splits.val.images
    )


def test_image_folder_large_images_read_on_the_fly(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=4)
    splits = hd.load_image_folder(root, image_size=96, val_size=3, test_size=0)
    assert isinstance(splits.train, hd.FolderSubset) and splits.test is None
    assert splits.mean == hd.IMAGENET_MEAN
    x, _ = splits.train[0]
    assert x.shape == (3, 96, 96) and x.dtype == torch.float32
    train, val, test = hd.make_loaders(splits, batch_size=4, device="cpu", num_workers=0)
    assert isinstance(train, torch.utils.data.DataLoader) and test is None
    xb, _ = next(iter(val))
    assert xb.shape == (3, 3, 96, 96)
    assert any(isinstance(t, v2.RandomResizedCrop) for t in train.dataset.transform.transforms)
    # augment=False swaps the training transform for the deterministic evaluation one
    plain, _, _ = hd.make_loaders(splits, batch_size=9, device="cpu", num_workers=0, augment=False)
    assert any(isinstance(t, v2.CenterCrop) for t in plain.dataset.transform.transforms)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="does not exist"):
        hd.load_image_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not an ImageFolder"):
        hd.load_image_folder(tmp_path / "empty")
    root = make_folder(tmp_path / "imgs", per_class=3)
    bad = root / "red" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DatasetCorruptError, match=r"broken\.png"):
        hd.load_image_folder(root, image_size=16, val_size=0, test_size=0)


# --------------------------------------------------------------------------- DeviceLoader


def test_device_loader_normalises_exactly_without_augmentation():
    data = random_set(20)
    dl = loader(data, shuffle=False, augment=False, batch_size=6)
    xs, ys = zip(*batches(dl), strict=True)
    assert len(dl) == 4 and [len(y) for y in ys] == [6, 6, 6, 2]
    x = torch.cat(xs)
    assert x.dtype == torch.float32 and torch.equal(torch.cat(ys), data.labels)
    expected = (data.images.float() / 255 - 0.5) / 0.25
    assert torch.allclose(x, expected, atol=1e-5)


def test_device_loader_shuffles_a_permutation_and_drop_last():
    data = random_set(50)
    dl = loader(data, batch_size=8, drop_last=True)
    labels = torch.cat([y for _, y in dl])
    assert len(dl) == 6 and len(labels) == 48 and len(set(labels.tolist())) == 48
    assert not torch.equal(labels, torch.arange(48))
    everything = torch.cat([y for _, y in loader(data, batch_size=8)])
    assert sorted(everything.tolist()) == list(range(50))


def test_augmentation_is_a_padded_crop_and_flip_of_the_source():
    data = random_set(40, size=8)
    pad = 2
    dl = loader(data, augment=True, pad=pad, batch_size=40)
    x, y = next(iter(dl))
    pixels = (x * 0.25 + 0.5) * 255  # undo the normalisation
    assert torch.allclose(pixels, pixels.round(), atol=1e-3)
    padded = F.pad(data.images[y].float(), (pad,) * 4)  # zeros, as RandomCrop(padding=pad)
    shifted = flipped = 0
    for out, src in zip(pixels.round(), padded, strict=True):
        crops = {
            (dy, dx): src[:, dy : dy + 8, dx : dx + 8]
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
        }
        candidates = {(*k, f): c.flip(-1) if f else c for k, c in crops.items() for f in (0, 1)}
        matches = [k for k, c in candidates.items() if torch.equal(c, out)]
        assert matches, "output is not a padded crop (+ flip) of its source image"
        dy, dx, f = matches[0]
        shifted += (dy, dx) != (pad, pad)
        flipped += f
    assert shifted > 20 and 5 < flipped < 35  # the augmentation really varies


def test_no_flip_option_and_grey_images():
    data = random_set(30, c=1)
    dl = loader(data, augment=True, pad=0, flip=False, batch_size=30, shuffle=False)
    x, _ = next(iter(dl))
    assert torch.allclose(x, (data.images.float() / 255 - 0.5) / 0.25, atol=1e-5)


def test_set_epoch_makes_batches_a_function_of_seed_and_epoch():
    data = random_set(30)
    a, b = loader(data, augment=True, seed=5), loader(data, augment=True, seed=5)
    a.set_epoch(3)
    b.set_epoch(3)
    for (xa, ya), (xb, yb) in zip(batches(a), batches(b), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    c = loader(data, augment=True, seed=5)  # no set_epoch: epochs 0, 1, 2... by itself
    first, second = batches(c), batches(c)
    c.set_epoch(1)
    replay = batches(c)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(second, replay, strict=True))
    assert not torch.equal(first[0][1], second[0][1])
    other_seed = batches(loader(data, augment=True, seed=6))
    assert not torch.equal(other_seed[0][1], first[0][1])


@pytest.mark.parametrize(("n", "drop_last"), [(48, True), (50, True), (50, False)])
def test_replicas_slice_the_same_global_batch(n, drop_last):
    data = random_set(n)
    world, per_rank = 3, 4
    single = batches(loader(data, augment=True, batch_size=world * per_rank, drop_last=drop_last))
    ranks = [
        batches(
            loader(
                data,
                augment=True,
                batch_size=per_rank,
                drop_last=drop_last,
                num_replicas=world,
                rank=r,
            )
        )
        for r in range(world)
    ]
    assert all(len(r) == len(single) for r in ranks)
    for step, (x, y) in enumerate(single):
        assert torch.equal(torch.cat([r[step][0] for r in ranks]), x)
        assert torch.equal(torch.cat([r[step][1] for r in ranks]), y)
    if drop_last:
        assert all(len(b[1]) == per_rank for r in ranks for b in r)


def test_device_loader_gives_the_model_its_threads_back():
    # Batches are prepared on one CPU thread; the training step between batches must not be.
    threads = torch.get_num_threads()
    for _ in loader(random_set(40), augment=True, batch_size=8):
        assert torch.get_num_threads() == threads
    assert torch.get_num_threads() == threads


def test_device_loader_len():
    data = random_set(50)
    assert len(loader(data, batch_size=8)) == 7
    assert len(loader(data, batch_size=8, drop_last=True)) == 6
    assert len(loader(data, batch_size=8, num_replicas=2, rank=1)) == 4  # global batch 16
    assert len(loader(data, batch_size=8, num_replicas=2, rank=1, drop_last=True)) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(batch_size=0), "batch_size"),
        (dict(rank=2, num_replicas=2), "rank"),
        (dict(num_replicas=0), "num_replicas"),
        (dict(mean=(0.5, 0.5)), "one value per channel"),
        (dict(mean=(125.0, 120.0, 110.0)), r"\[0, 1\]"),
        (dict(std=(0.2, 0.0, 0.2)), "positive"),
        (dict(pad=-1), "pad"),
    ],
)
def test_device_loader_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        loader(random_set(10), **kwargs)


def test_device_loader_rejects_bad_tensors():
    with pytest.raises(TypeError, match="uint8"):
        DeviceLoader(
            torch.rand(4, 3, 8, 8), torch.arange(4), batch_size=2, mean=(0.5,) * 3, std=(0.2,) * 3
        )
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        DeviceLoader(
            torch.zeros(4, 3, 8, 8, dtype=torch.uint8),
            torch.arange(3),
            batch_size=2,
            mean=(0.5,) * 3,
            std=(0.2,) * 3,
        )
    with pytest.raises(TypeError, match="ImageTensorSet"):
        DeviceLoader.from_set(torch.zeros(3), batch_size=2, mean=(0.5,), std=(0.2,))


def test_make_loaders_for_tensor_sets():
    splits = hd.load("digits")
    train, val, test = hd.make_loaders(splits, batch_size=64, device="cpu")
    assert all(isinstance(dl, DeviceLoader) for dl in (train, val, test))
    assert train.augment and train.shuffle and not train.flip  # digits must not be mirrored
    assert not val.augment and not val.shuffle and train.pad == 4
    x, y = next(iter(val))
    assert x.shape == (64, 3, 32, 32) and y.dtype == torch.int64
    plain, _, _ = hd.make_loaders(splits, batch_size=64, device="cpu", augment=False)
    assert not plain.augment


@pytest.mark.gpu
def test_device_loader_on_cuda_replays_the_cpu_batches():
    # Randomness is drawn on the CPU, so a CUDA loader yields exactly the CPU loader's batches.
    data = random_set(100, size=16)
    on_cpu = batches(loader(data, augment=True, batch_size=32, seed=3))
    on_gpu = batches(loader(data, augment=True, batch_size=32, seed=3, device="cuda"))
    for (xc, yc), (xg, yg) in zip(on_cpu, on_gpu, strict=True):
        assert xg.is_cuda and yg.is_cuda
        assert torch.equal(yg.cpu(), yc) and torch.allclose(xg.cpu(), xc, atol=1e-6)


def test_course_offline_turns_downloads_off(monkeypatch, tmp_path):
    """COURSE_OFFLINE=1 (set by the test suite) means no download attempt, and the error says so."""
    import torchvision

    from helpers.data import DatasetUnavailableError, load

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted although COURSE_OFFLINE=1")

    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", no_download)
    with pytest.raises(
        DatasetUnavailableError, match=r"(?s)missing data_batch_1.*COURSE_OFFLINE=1"
    ):
        load("cifar10", root=tmp_path)


# --------------------------------------------------------------------------- batch transforms


def test_default_augmentation_is_the_random_crop_flip_transform():
    """augment=True and transform=RandomCropFlip(pad) give the same batches."""
    from helpers.data import Cutout, RandomCropFlip

    data = random_set(30)
    default = batches(loader(data, augment=True, pad=2, seed=4))
    explicit = batches(loader(data, transform=RandomCropFlip(2), seed=4))
    for (xa, ya), (xb, yb) in zip(default, explicit, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    with pytest.raises(ValueError, match=r"augment=True .* and transform= both given"):
        loader(data, augment=True, transform=RandomCropFlip(2))
    with pytest.raises(ValueError, match=r"pixel transforms .* must come before"):
        loader(data, transform=[Cutout(2), RandomCropFlip(2)])


def test_cutout_masks_one_square_per_image_with_the_mean():
    from helpers.data import Cutout

    data = random_set(40, size=16)
    dl = loader(data, transform=Cutout(6), shuffle=False, batch_size=40)
    x, _ = next(iter(dl))
    clean = (data.images.float() / 255 - 0.5) / 0.25
    masked = ((x - clean).abs() > 1e-4).any(dim=1)  # (B, H, W): where cutout changed it
    assert torch.all(x.masked_select(masked[:, None].expand_as(x)) == 0)  # the mean colour
    sizes = masked.sum(dim=(1, 2))
    rows, cols = masked.any(dim=2).sum(1), masked.any(dim=1).sum(1)
    assert torch.all(rows <= 6) and torch.all(cols <= 6)
    assert torch.all(sizes <= rows * cols) and (sizes == 36).sum() > 10  # whole squares inside
    assert len({tuple(m.nonzero()[0].tolist()) for m in masked if m.any()}) > 10  # they move


def test_custom_transforms_replay_per_epoch_and_slice_across_replicas():
    from helpers.data import Cutout, RandomCropFlip

    data = random_set(36)

    def make(**kw):
        return loader(data, transform=[RandomCropFlip(2), Cutout(3), lambda x: x * 2], **kw)

    single = make(batch_size=12, seed=1)
    single.set_epoch(2)
    reference = batches(single)
    again = make(batch_size=12, seed=1)
    again.set_epoch(2)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(reference, batches(again), strict=True))
    ranks = []
    for r in range(3):
        dl = make(batch_size=4, seed=1, num_replicas=3, rank=r)
        dl.set_epoch(2)
        ranks.append(batches(dl))
    for step, (x, y) in enumerate(reference):
        assert torch.equal(torch.cat([r[step][0] for r in ranks]), x)
        assert torch.equal(torch.cat([r[step][1] for r in ranks]), y)
    plain = batches(loader(data, batch_size=12, shuffle=False, transform=lambda x: x * 2))
    assert torch.allclose(plain[0][0], 2 * (data.images[:12].float() / 255 - 0.5) / 0.25, atol=1e-5)
    with pytest.raises(TypeError, match="transform must be"):
        loader(data, transform=3)


def test_make_loaders_passes_the_transform_to_the_training_loader_only():
    from helpers.data import Cutout

    splits = hd.load("digits")
    train, val, _ = hd.make_loaders(splits, batch_size=64, device="cpu", transform=Cutout(4))
    assert [type(t) for t in train.transforms] == [Cutout] and not train.augment
    assert val.transforms == []


@pytest.mark.parametrize(
    ("pad", "shape"), [(0, (3, 3, 8, 8)), (2, (9, 1, 6, 10)), (4, (17, 3, 32, 32))]
)
def test_random_crop_flip_equals_crop_then_flip_image_by_image(pad, shape):
    """The batched row gather gives exactly the per-image padded crop (+ horizontal flip)."""
    from helpers.data import RandomCropFlip

    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    transform = RandomCropFlip(pad)
    offset_y, offset_x, flipped = transform.sample(shape[0], torch.Generator().manual_seed(2))
    out = transform(x, offset_y, offset_x, flipped)
    padded = F.pad(x, (pad,) * 4)
    h, w = shape[-2:]
    for i in range(shape[0]):
        crop = padded[i, :, offset_y[i] : offset_y[i] + h, offset_x[i] : offset_x[i] + w]
        assert torch.equal(out[i], crop.flip(-1) if flipped[i] else crop)
    assert (flipped.any() and not flipped.all()) or shape[0] < 5  # both kinds were tested


# ---- CIFAR-10 as an ImageFolder tree a user copied into the data root


def write_cifar10_tree(folder: Path, per_class: int, classes=hd.CIFAR10_CLASSES) -> None:
    """``per_class`` random 32x32 JPEGs per class in ``folder/<class>/``, as the course's copy."""
    rng = np.random.default_rng(0)
    for name in classes:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i:04d}.jpg")


def test_cifar10_image_folder_without_test_split_holds_out_a_stand_in(tmp_path):
    write_cifar10_tree(tmp_path / "cifar10" / "train", per_class=6)
    splits = hd.load("cifar10", root=tmp_path, download=False, val_size=10, test_size=20)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 20)
    assert splits.classes == list(hd.CIFAR10_CLASSES) and splits.num_classes == 10
    assert splits.train.images.shape[1:] == (3, 32, 32) and splits.train.images.dtype == torch.uint8
    assert torch.bincount(splits.test.labels, minlength=10).tolist() == [2] * 10  # stratified
    assert "image folder" in splits.source and "NO official test split" in splits.source
    assert "held-out training images stand in" in splits.source


def test_cifar10_image_folder_with_test_split_uses_it(tmp_path):
    write_cifar10_tree(tmp_path / "cifar10" / "train", per_class=4)
    write_cifar10_tree(tmp_path / "cifar10" / "test", per_class=2)
    splits = hd.load("cifar10", root=tmp_path, download=False, val_size=10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 20)
    assert "official test split" in splits.source and "NO official" not in splits.source


def test_cifar10_image_folder_with_other_classes_is_refused(tmp_path):
    write_cifar10_tree(tmp_path / "cifar10" / "train", per_class=1, classes=("cat", "dog"))
    with pytest.raises(ValueError, match="not CIFAR-10's"):
        hd.load("cifar10", root=tmp_path, download=False)


def test_cifar10_nowhere_names_both_ways_to_provide_it(tmp_path):
    with pytest.raises(hd.DatasetUnavailableError) as info:
        hd.load("cifar10", root=tmp_path, download=False)
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message  # torchvision's archive
    assert str(tmp_path / "cifar10" / "train") in message  # or an ImageFolder copy
