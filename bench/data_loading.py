"""Images/s of loading an ImageNet-sized JPEG validation folder through ``imagenet:PATH``.

    python bench/data_loading.py [--n 50000] [--unique K] [--root DIR] [--threads K]

A synthetic stand-in is generated once into ``--root`` (default: a folder under the
failmodes cache): ``--n`` JPEGs of ImageNet's typical 500×375 (every 4th 375×500), quality
90, smooth random colour fields plus noise so they compress like photos (~100 KB), spread
over the 1000 WordNet-id folders. Then two timed loads: ``cold`` (decode, resize 256,
centre crop 224, into the memory-mapped decode cache, in threads) and ``warm`` (the
cache reopened as a memory map). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def _make_one(args) -> int:
    from PIL import Image
    path, seed = args
    rng = np.random.default_rng(seed)
    w, h = (375, 500) if seed % 4 == 3 else (500, 375)
    small = rng.integers(0, 256, (h // 25 + 1, w // 25 + 1, 3), dtype=np.uint8)
    im = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
    arr = np.asarray(im, dtype=np.int16) + rng.integers(-12, 13, (h, w, 3))
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path.stat().st_size


def make_tree(root: Path, n: int, threads: int, unique: int | None = None) -> dict:
    """``n`` synthetic JPEGs under ``root/<wnid>/``; reused when already complete. With
    ``unique`` < n only that many are drawn and the rest are byte copies of them (separate
    files: each is still opened, read and decoded), which cuts the generation time."""
    from failmodes.data import imagenet_wnids
    unique = n if unique is None else min(unique, n)
    stamp = root / (f".complete-{n}" + ("" if unique == n else f"-u{unique}"))
    if stamp.exists():
        return json.loads(stamp.read_text())
    shutil.rmtree(root, ignore_errors=True)
    wnids = imagenet_wnids()
    jobs = []
    for i in range(n):
        d = root / wnids[i % 1000]
        d.mkdir(parents=True, exist_ok=True)
        jobs.append((d / f"ILSVRC2012_val_{i + 1:08d}.JPEG", i))
    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        sizes = list(pool.map(_make_one, jobs[:unique], chunksize=64))
        for i in range(unique, n):
            shutil.copyfile(jobs[i % unique][0], jobs[i][0])
            sizes.append(sizes[i % unique])
    info = {"files": n, "unique": unique, "bytes": int(sum(sizes)),
            "generate_s": round(time.perf_counter() - t, 1)}
    stamp.write_text(json.dumps(info))
    return info


class PeakAnon:
    """Peak anonymous RSS (RssAnon) of this process, sampled every 0.1 s: the memory that
    is not file-backed. Pages of the memory-mapped cache are file-backed (counted in
    ru_maxrss while resident, but the kernel may drop them), so this is what loading
    really holds."""

    def __init__(self):
        import threading
        self.peak, self._stop = 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def now() -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            self._stop.wait(0.1)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.now())


def main(argv=None) -> None:
    from failmodes.data import _cache, cache_dir, load_dataset
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--root", type=Path, default=None)
    ap.add_argument("--unique", type=int, default=None,
                    help="draw only this many distinct JPEGs; the rest are byte copies")
    ap.add_argument("--threads", type=int, default=None, help="decoder threads (default: auto)")
    args = ap.parse_args(argv)
    if args.threads:
        _cache.decode_threads = lambda: args.threads
    root = args.root or cache_dir() / "bench" / f"imagenet-synthetic-{args.n}"
    tree = make_tree(root, args.n, _cache.decode_threads(), args.unique)
    for d in (cache_dir() / "imagefolder").glob("*"):  # a cold load decodes again
        meta = d / "meta.json"
        if meta.exists() and json.loads(meta.read_text()).get("root") == str(root):
            shutil.rmtree(d)
    anon0 = PeakAnon.now()
    t = time.perf_counter()
    with PeakAnon() as anon:
        ds = load_dataset(f"imagenet:{root}")
    cold = time.perf_counter() - t
    t = time.perf_counter()
    ds2 = load_dataset(f"imagenet:{root}")
    warm = time.perf_counter() - t
    assert ds2.images.shape == ds.images.shape == (args.n, 224, 224, 3)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(json.dumps({
        "n": args.n, "unique_jpegs": tree.get("unique", args.n),
        "generate_s": tree["generate_s"], "jpeg_bytes_mean": tree["bytes"] // args.n,
        "out": "uint8 224x224x3",
        "threads": _cache.decode_threads(), "cpus": os.cpu_count(),
        "cold_s": round(cold, 2), "cold_images_per_s": round(args.n / cold, 1),
        "warm_s": round(warm, 2), "warm_images_per_s": round(args.n / warm, 1),
        "cache_bytes": int(ds.images.nbytes),
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "anon_rss_before_bytes": anon0, "anon_rss_peak_cold_bytes": anon.peak,
        "loadavg": load, "python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
