"""One image decoder everywhere, and the data layer under hostile input (issues 13, 14)."""
import errno
import json
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from failmodes.data import DataError, cache_dir, decode_image, load_dataset, load_imagefolder


def _tricky_pngs(folder):
    """An RGBA PNG with half-transparent pixels, a 16-bit grey PNG, an EXIF-rotated JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (12, 16, 4), dtype=np.uint8)
    rgba[:, :8, 3] = 0      # transparent: white whatever the colour underneath
    rgba[:, 8:12, 3] = 255  # opaque: the colour itself; 12: random partial alpha
    Image.fromarray(rgba, "RGBA").save(folder / "a_rgba.png")
    g16 = (rng.integers(0, 65536, (12, 16))).astype(np.uint16)
    Image.fromarray(g16).save(folder / "b_gray16.png")
    assert Image.open(folder / "b_gray16.png").mode.startswith("I")
    im = Image.fromarray(rng.integers(0, 256, (16, 12, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    im.save(folder / "c_exif.jpg", exif=exif, quality=95)
    return rgba, g16


def test_same_png_gives_identical_pixels_in_corrupt_evaluate_and_probe(tmp_path):
    from failmodes.analysis.probe import load_probe_image
    from failmodes.stressors.io import load_image as corrupt_load

    rgba, g16 = _tricky_pngs(tmp_path / "pics" / "only")
    for name in ("a_rgba.png", "b_gray16.png", "c_exif.jpg"):
        f = tmp_path / "pics" / "only" / name
        via_corrupt = (corrupt_load(f) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        via_probe, _ = load_probe_image(str(f))
        one = tmp_path / name / "c"
        one.mkdir(parents=True)
        (one / name).write_bytes(f.read_bytes())
        via_eval = load_dataset(f"imagefolder:{tmp_path / name}").images[0].numpy()
        assert np.array_equal(via_corrupt, via_probe) and np.array_equal(via_probe, via_eval)
    # The rules themselves: alpha over white, 16-bit as v/257 rounded, EXIF applied.
    a = decode_image(tmp_path / "pics" / "only" / "a_rgba.png")
    assert (a[:, :8] == 255).all()
    assert np.array_equal(a[:, 8:12], rgba[:, 8:12, :3])
    b = decode_image(tmp_path / "pics" / "only" / "b_gray16.png")
    assert np.array_equal(b[..., 0], np.floor(g16 / 257 + 0.5).astype(np.uint8))
    assert decode_image(tmp_path / "pics" / "only" / "c_exif.jpg").shape == (12, 16, 3)


def _bomb_png(path, side=15000):
    """A 1-bit grey PNG of side² pixels, a few tens of KB on disk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    row = b"\0" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side,
                     1, 0, 0, 0, 0)) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_decompression_bomb_is_skipped_by_name_in_bounded_memory_and_time(tmp_path):
    root = tmp_path / "tree"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        Image.new("RGB", (8, 8), (10, 20, 30)).save(root / c / "ok.png")
    _bomb_png(root / "b" / "bomb.png")
    assert (root / "b" / "bomb.png").stat().st_size < 100_000
    code = ("import resource, sys, logging; logging.basicConfig(); "
            "from failmodes.data import load_imagefolder; "
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            f"ds = load_imagefolder({str(root)!r}, use_cache=False); "
            "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            "print(len(ds), (after - before) // 1024, ds.skipped[0])")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    n, grown_mb, why = out.stdout.split(" ", 2)
    assert n == "2" and int(grown_mb) < 100  # decoding it would take 225 MB (675 MB as RGB)
    assert "bomb.png" in why and "decompression bomb" in why and "bomb.png" in out.stderr
    assert time.perf_counter() - t < 60


def test_image_size_range_and_memory_are_checked_before_allocating(tmp_path):
    (tmp_path / "c").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "c" / "x.png")
    with pytest.raises(DataError, match="positive whole number of pixels, got 0"):
        load_dataset(str(tmp_path), image_size=0)
    t = time.perf_counter()
    with pytest.raises(DataError, match=r"100000×100000 image needs .* GiB") as e:
        load_dataset(str(tmp_path), image_size=100000)
    assert "\n" not in str(e.value) and time.perf_counter() - t < 5


def test_empty_class_folder_in_flat_layout_is_named(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cat" / "x.png")
    with pytest.raises(DataError, match=r"class folder .*dog holds no images"):
        load_dataset(str(tmp_path))


def _small_tree(root):
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (40 * i, 10, 99)).save(root / c / f"{i}.png")
    return root


@pytest.mark.parametrize("damage", ["truncate", "garble-meta", "drop-labels"])
def test_corrupt_decode_cache_is_rebuilt(tmp_path, damage, caplog):
    root = _small_tree(tmp_path / "t")
    first = load_imagefolder(root).images.clone().numpy()  # a copy: the cache is a memmap
    cdirs = [p.parent for p in (cache_dir() / "imagefolder").glob("*/meta.json")
             if json.loads(p.read_text())["root"] == str(root)]
    (cdir,) = cdirs
    if damage == "truncate":
        with open(cdir / "images.npy", "r+b") as f:
            f.truncate(100)
    elif damage == "garble-meta":
        (cdir / "meta.json").write_text("{not json")
    else:
        (cdir / "labels.npy").unlink()
    again = load_imagefolder(root)
    assert np.array_equal(np.asarray(again.images), first) and first.sum() > 0
    assert "rebuilding" in caplog.text
    assert np.array_equal(np.asarray(load_imagefolder(root).images), first)


def _tmp_files():
    assert "pytest" in str(cache_dir())  # the test's own cache, not the user's
    return [p for p in cache_dir().rglob("*") if ".tmp" in p.name]


def test_full_disk_leaves_no_temp_file_and_still_loads(tmp_path, caplog):
    root = _small_tree(tmp_path / "t")

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as mp:  # (monkeypatch.undo would drop the cache env)
        mp.setattr(os, "posix_fallocate", no_space)
        ds = load_imagefolder(root)
    assert len(ds) == 6 and not _tmp_files() and "decoding in memory" in caplog.text
    # Space for the images, then the disk fills while writing labels.npy.
    real_save = np.save

    def save(f, arr, *a, **k):
        if arr.dtype == np.int64:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(f, arr, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(np, "save", save)
        ds = load_imagefolder(_small_tree(tmp_path / "u"))
    assert len(ds) == 6 and not _tmp_files() and "could not write the decode cache" in caplog.text
    assert ds.images.sum() > 0



def test_concurrent_loads_build_the_cache_once_and_temp_files_are_per_process(tmp_path):
    """A second loader waits on the cache lock while another process builds the cache,
    then reads it (no second decode, and no shared temp file to truncate under a map)."""
    import shutil
    import threading

    from failmodes.data import _cache
    root = _small_tree(tmp_path / "t")
    first = load_imagefolder(root).images.clone().numpy()
    (cdir,) = [p.parent for p in (cache_dir() / "imagefolder").glob("*/meta.json")
               if json.loads(p.read_text())["root"] == str(root)]
    built = tmp_path / "built-elsewhere"
    shutil.move(cdir, built)  # the cache another process is about to finish
    decodes, got = [], []
    real = _cache.decode_files

    def counting(*a, **k):
        decodes.append(1)
        return real(*a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("failmodes.data.folders.decode_files", counting)
        waiter = threading.Thread(target=lambda: got.append(load_imagefolder(root)))
        with _cache.cache_lock(cdir):  # the other process holds the lock while it builds
            waiter.start()
            waiter.join(0.5)
            assert waiter.is_alive() and not decodes  # waiting, not decoding a second copy
            shutil.move(built, cdir)  # ... and finishes
        waiter.join(30)
    assert not waiter.is_alive() and not decodes  # it read the finished cache
    assert np.array_equal(np.asarray(got[0].images), first)
    assert _cache._tmp(cdir, "images.npy").name == f"images.npy.{os.getpid()}.tmp"
    assert not _tmp_files()
