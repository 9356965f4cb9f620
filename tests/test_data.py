"""Data layer: synthetic set, image folders of any mode, the decode cache, bad input."""
import os
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from failmodes.data import DataError, load_dataset, load_imagefolder, train_val_split
from failmodes.data.synthetic import CLASSES, make_synthetic


def _tree(root, split="test", modes=("RGB",), per_class=3, size=16, classes=("cat", "dog")):
    rng = np.random.default_rng(0)
    for c in classes:
        d = root / split / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            mode = modes[i % len(modes)]
            arr = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
            im = Image.fromarray(arr, "RGBA")
            if mode == "P":
                im = im.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
            elif mode == "I;16":
                im = Image.fromarray((arr[..., 0].astype(np.uint16) * 200), "I;16")
            else:
                im = im.convert(mode)
            ext = "png" if mode in ("RGBA", "LA", "P", "I;16") else "jpg"
            if mode == "CMYK":
                ext = "jpg"
            im.save(d / f"{i:03d}.{ext}")
    return root


def test_synthetic_is_deterministic_balanced_and_split():
    a, la = make_synthetic(200, seed=3)
    b, lb = make_synthetic(200, seed=3)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert a.dtype == torch.uint8 and a.shape == (200, 32, 32, 3)
    assert torch.bincount(la, minlength=10).tolist() == [20] * 10
    tr, te = load_dataset("synthetic", "train"), load_dataset("synthetic", "test")
    assert tr.classes == te.classes == CLASSES
    assert not torch.equal(tr.images[:10], te.images[:10])


def test_synthetic_classes_differ_in_mean_image():
    # A learnable set: per-class mean masks must differ (the shapes are distinct).
    x, y = make_synthetic(1000, seed=0)
    means = torch.stack([x[y == c].float().mean(0).mean(-1) for c in range(10)])
    dists = torch.cdist(means.flatten(1), means.flatten(1))
    assert dists[~torch.eye(10, dtype=bool)].min() > 1.0


@pytest.mark.parametrize("modes", [("RGB",), ("L", "RGBA", "P", "CMYK", "LA", "I;16")])
def test_imagefolder_converts_every_mode_to_rgb(tmp_path, modes):
    _tree(tmp_path, modes=modes)
    ds = load_imagefolder(tmp_path, "test")
    assert ds.images.shape == (6, 16, 16, 3) and ds.images.dtype == torch.uint8
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_corrupt_file_is_reported_and_skipped_on_every_load(tmp_path, caplog):
    _tree(tmp_path)
    bad = tmp_path / "test" / "dog" / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    for _ in range(2):  # the second load comes from the decode cache and says it again
        caplog.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a log line, not a raw Python warning
            ds = load_imagefolder(tmp_path, "test")
        assert len(ds) == 6 and any("broken.jpg" in s for s in ds.skipped)
        assert [r.name for r in caplog.records] == ["failmodes.data"]
        assert "skipped 1 unreadable image" in caplog.text and "broken.jpg" in caplog.text


def test_empty_and_missing_folders_fail_clearly(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_imagefolder(tmp_path / "nope", "test")
    (tmp_path / "test" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no images|no class folders"):
        load_imagefolder(tmp_path, "test")
    (tmp_path / "test" / "cat" / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match="no readable images"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_imagefolder(tmp_path, "test")


def test_mixed_sizes_need_image_size(tmp_path):
    _tree(tmp_path, size=16)
    Image.new("RGB", (20, 12)).save(tmp_path / "test" / "cat" / "odd.png")
    with pytest.raises(DataError, match="--image-size"):
        load_imagefolder(tmp_path, "test")
    ds = load_imagefolder(tmp_path, "test", image_size=24)
    assert ds.images.shape[1:] == (24, 24, 3)


def test_second_load_comes_from_cache_and_edits_invalidate(tmp_path):
    _tree(tmp_path, per_class=20)
    first = load_imagefolder(tmp_path, "test")
    t = time.perf_counter()
    second = load_imagefolder(tmp_path, "test")
    assert time.perf_counter() - t < 5  # generous: only checks the cache path works
    assert torch.equal(first.images, torch.as_tensor(np.asarray(second.images)))
    f = tmp_path / "test" / "cat" / "000.jpg"
    Image.new("RGB", (16, 16), (255, 0, 0)).save(f)
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = load_imagefolder(tmp_path, "test")
    assert third.images[0].float().mean() != first.images[0].float().mean()


def test_single_split_tree_and_unknown_spec(tmp_path):
    _tree(tmp_path)
    ds = load_dataset(str(tmp_path / "test"), "test")
    assert len(ds) == 6
    with pytest.raises(DataError, match="unknown data spec"):
        load_dataset("imagenet-but-not-here")


def test_train_val_split_is_fixed_and_disjoint():
    ds = load_dataset("synthetic", "test")
    tr, va = train_val_split(ds, 0.1, seed=42)
    tr2, va2 = train_val_split(ds, 0.1, seed=42)
    assert torch.equal(va.indices, va2.indices)
    assert len(tr) + len(va) == len(ds) and len(va) == 200
    assert not set(tr.indices.tolist()) & set(va.indices.tolist())
    assert load_dataset("synthetic", "train-val").split == "train-val"


def test_subset_is_stratified_and_keeps_indices():
    ds = load_dataset("synthetic", "test")
    sub = ds.subset(100, seed=1)
    assert len(sub) == 100
    assert torch.bincount(sub.labels, minlength=10).tolist() == [10] * 10
    assert torch.equal(ds.images[sub.indices], sub.images)


def test_cifar10c_folder(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "fog.npy", imgs)
    np.save(tmp_path / "labels.npy", np.arange(50) % 10)
    ds = load_dataset(f"cifar10c:{tmp_path}", split="fog", severity=2)
    assert len(ds) == 10 and torch.equal(ds.images, torch.from_numpy(imgs[10:20]))
    with pytest.raises(DataError, match="not found"):
        load_dataset(f"cifar10c:{tmp_path}", split="snow", severity=1)


def test_cifar10_offline_message(monkeypatch, tmp_path):
    import torchvision.datasets as tvd

    def boom(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvd, "CIFAR10", boom)
    with pytest.raises(DataError, match="--data PATH"):
        load_dataset("cifar10", "test")
