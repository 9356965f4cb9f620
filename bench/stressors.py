"""Corruption throughput: failmodes (batched torch) vs the `imagecorruptions` package.

    python bench/stressors.py [--images FILE_OR_DIR] [--size 32|224] [--n-ours 2000]
                              [--n-theirs 100] [--threads 2] [--theirs-python PY] [--out FILE]

Both sides corrupt the same images with all 19 corruptions at severities 1..5, one
corruption after the other, ours then theirs, so that both see the same machine load.
Ours runs whole batches (CPU, and CUDA when present); imagecorruptions 1.1.2 (what users
pip-install) runs one image per call (its API) through ``bench/_imagecorruptions_runner.py``,
by default in THIS interpreter, so both sides compute with the same numpy, SciPy,
scikit-image and OpenCV (install it beside ours with ``pip install --no-deps
imagecorruptions==1.1.2``: its own requirement ``opencv-python`` would add a second cv2);
the shims it needs on today's numpy / scikit-image and both sides' library versions are
listed in the output. ``--theirs-python PY`` times it in another interpreter instead (the
versions then differ and the JSON says so). ``--size 224`` enlarges the images (bilinear), so that
ours uses the ImageNet-C severity tables, as imagecorruptions always does.

Images (``--images``): an .npz with a ``clean`` array (default: the fidelity reference
``../shared/fidelity/cifar10c-dev.npz`` beside the repository, or $FAILMODES_FIDELITY_DIR),
an .npy of uint8 N×H×W×3, or a folder of images (``<class>/*.jpg``, e.g. a CIFAR-10 test
tree; round-robin over classes); tiled to the requested count.

Prints JSON: images/s per corruption (wall and process CPU time) for both sides, their
ratio, the whole suite (19 x 5 cells) per side, threads, sizes and load averages.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from failmodes._device import cpu_description  # noqa: E402
from failmodes.stressors import get_stressor, suite  # noqa: E402

SEVERITIES = (1, 2, 3, 4, 5)
FIDELITY = Path(os.environ.get("FAILMODES_FIDELITY_DIR", ROOT.parent / "shared" / "fidelity"))
DEFAULT_IMAGES = FIDELITY / "cifar10c-dev.npz"


def load_images(path: Path, n: int, size: int) -> tuple[np.ndarray, str]:
    """n images, uint8 N×size×size×3, from an .npz (``clean``), an .npy or an image folder."""
    if path.is_dir():
        from PIL import Image
        by_class: dict[str, list[Path]] = {}
        for f in sorted(p for p in path.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
            by_class.setdefault(f.parent.name, []).append(f)
        # Round-robin over classes so any prefix is class-balanced.
        order = [f for group in zip(*by_class.values()) for f in group][:n]
        arr = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in order])
    elif path.suffix == ".npz":
        arr = np.load(path)["clean"]
    elif path.suffix == ".npy":
        arr = np.load(path)
    else:
        raise SystemExit(f"--images {path}: expected an .npz with 'clean', an .npy or a folder")
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise SystemExit(f"--images {path}: need uint8 N×H×W×3, got {arr.dtype} {arr.shape}")
    if arr.shape[1:3] != (size, size):
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float()
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                            align_corners=False)
        arr = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    tiled = "" if len(arr) >= n else f" (tiled from {len(arr)})"
    return np.resize(arr, (n, *arr.shape[1:])), f"{path}{tiled}"


def time_ours(x: torch.Tensor, name: str, passes: int = 1) -> dict:
    """{"wall_s", "cpu_s"} of one corruption at all severities over the whole batch, the
    first pass after a small warm-up; with ``passes`` > 1 also "wall_s_steady", the
    fastest of the passes after it (a study stresses batch after batch: by then the
    output buffer, the allocator's heap and the codecs' buffers exist)."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    stressor = get_stressor(name)
    for s in SEVERITIES:  # warm-up: kernels, lazy imports, each severity's size caches
        stressor(x[:8], float(s))
    sync()
    out: dict = {}
    for i in range(passes):
        t0, c0 = time.perf_counter(), time.process_time()
        for s in SEVERITIES:
            stressor(x, float(s), seed=0)
        sync()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if i == 0:
            out = {"wall_s": wall, "cpu_s": cpu}
        else:
            out["wall_s_steady"] = min(wall, out.get("wall_s_steady", wall))
    return out


def time_theirs(images_path: Path, n: int, name: str, python: str) -> dict:
    runner = Path(__file__).with_name("_imagecorruptions_runner.py")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    r = subprocess.run([python, str(runner), str(images_path), str(n), name],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"imagecorruptions runner failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _ours_versions() -> dict:
    import cv2
    import scipy
    import skimage
    return {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-image": skimage.__version__,
            "opencv": cv2.__version__, "torch": torch.__version__}


def rates(timings: dict, n: int, key: str) -> dict:
    return {k: round(len(SEVERITIES) * n / v[key], 1) for k, v in timings.items()}


def suite_rate(timings: dict, n: int, key: str) -> float:
    return round(len(timings) * len(SEVERITIES) * n / sum(v[key] for v in timings.values()), 1)


def summary(timings: dict, n: int, with_cpu: bool) -> dict:
    out = {"images_per_s_wall": rates(timings, n, "wall_s"),
           "suite_images_per_s_wall": suite_rate(timings, n, "wall_s")}
    if with_cpu:
        out["images_per_s_cpu"] = rates(timings, n, "cpu_s")
        out["suite_images_per_s_cpu"] = suite_rate(timings, n, "cpu_s")
    w = out["images_per_s_wall"]
    out["slowest_wall"] = min(w, key=w.get)
    return out


def speedup(mine: dict, theirs: dict, key: str = "wall") -> dict:
    """Ours over theirs: the suite, each corruption, and the lowest of them."""
    per = {k: round(v / theirs[f"images_per_s_{key}"][k], 1)
           for k, v in mine[f"images_per_s_{key}"].items()}
    return {"suite": round(mine[f"suite_images_per_s_{key}"]
                           / theirs[f"suite_images_per_s_{key}"], 1),
            "min": min(per.values()), "slowest_vs_theirs": min(per, key=per.get),
            "per_corruption": per}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES,
                    help="an .npz with 'clean', an .npy (uint8 N×H×W×3) or an image folder")
    ap.add_argument("--size", type=int, default=32, help="image side in px (32: CIFAR-10-C "
                    "tables; 224: ImageNet-C tables, as imagecorruptions uses)")
    ap.add_argument("--n-ours", type=int, default=2000)
    ap.add_argument("--n-theirs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads for ours")
    ap.add_argument("--only", default=None, help="comma-separated corruptions (default: all 19)")
    ap.add_argument("--theirs-python", default=os.environ.get("FAILMODES_IC_PYTHON"),
                    help="python with imagecorruptions==1.1.2 (default $FAILMODES_IC_PYTHON, "
                         "else this interpreter when it can import imagecorruptions)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--passes", type=int, default=2,
                    help="passes of ours per corruption: the first is the headline number; "
                         "the fastest later one is reported as 'steady' (default 2)")
    ap.add_argument("--no-tune-malloc", action="store_true",
                    help="leave glibc's malloc as it is (the failmodes command tunes it at start: "
                         "failmodes/_malloc.py); for timing that setting's effect")
    args = ap.parse_args(argv)
    from failmodes._malloc import tune_cpu_allocator
    allocator = ({"applied": False, "why": "--no-tune-malloc"} if args.no_tune_malloc
                 else tune_cpu_allocator())
    if not args.theirs_python and importlib.util.find_spec("imagecorruptions") is not None:
        args.theirs_python = sys.executable
    torch.set_num_threads(args.threads)
    names = args.only.split(",") if args.only else suite("all")
    images, source = load_images(args.images, max(args.n_ours, args.n_theirs), args.size)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    ours_x = {d: torch.from_numpy(images[:args.n_ours]).permute(0, 3, 1, 2).contiguous()
              .to(d).float() / 255.0 for d in devices}
    result = {
        "what": f"images/s per corruption (5 severities each) and for the whole suite "
                f"({len(names)} corruptions x 5 severities), {args.size}-px images",
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "images": {"source": source, "size_px": args.size, "n_ours": args.n_ours,
                   "n_theirs": args.n_theirs},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "cpu": cpu_description(),
                    "torch": torch.__version__, "torch_threads": args.threads,
                    "allocator": allocator,
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "notes": [
            "ours: whole batches (CPU: cache-sized chunks on torch_threads worker threads); "
            "imagecorruptions: one image per call (its API), one process, one thread",
            "each corruption: ours (all devices) then theirs, so both see the same load",
            "imagecorruptions applies the ImageNet-C (224 px) tables at every size; at 32 px "
            "ours uses the CIFAR-10-C ones, so the work per image differs there (e.g. its "
            "glass_blur makes 2-3 passes of displacements up to 4 px): speed, not fidelity "
            "(shared/fidelity/check.py checks that)",
            "cpu = process CPU time (the work, robust on a shared machine; with N threads "
            "it sums all of them); wall = elapsed time",
            "ours: the first pass over the batch after a warm-up on 8 images (the headline); "
            "ours_cpu_steady / speedup cpu_wall_steady: the fastest later pass (--passes), as "
            "a study stressing batch after batch sees it; imagecorruptions: one pass after "
            "one warm-up image per severity (its per-image calls keep no batch-sized state)",
            "speedup cpu_wall: ours on n_ours images vs theirs on n_theirs; "
            "cpu_wall_same_images: ours also timed on theirs' n_theirs images (which stay in "
            "the caches when few), the like-for-like ratio",
        ],
    }
    ours = {d: {} for d in devices}
    theirs, meta, same = {}, None, {}
    with tempfile.TemporaryDirectory() as tmp:
        theirs_path = Path(tmp) / "images.npy"
        np.save(theirs_path, images[:args.n_theirs])
        for name in names:
            for d in devices:
                ours[d][name] = time_ours(ours_x[d], name, args.passes)
            if args.theirs_python and args.n_theirs < args.n_ours:
                same[name] = time_ours(ours_x["cpu"][:args.n_theirs], name)
            if args.theirs_python:
                t = time_theirs(theirs_path, args.n_theirs, name, args.theirs_python)
                theirs[name] = t["per_corruption"][name]
                meta = t
    for d in devices:
        result[f"ours_{d}"] = summary(ours[d], args.n_ours, with_cpu=d == "cpu")
    if torch.cuda.is_available():
        result["machine"]["cuda"] = torch.cuda.get_device_name()
    if not args.theirs_python:
        result["imagecorruptions"] = ("skipped: imagecorruptions is not importable here; "
                                      "pip install --no-deps imagecorruptions==1.1.2, or pass "
                                      "--theirs-python")
    else:
        ic = summary(theirs, args.n_theirs, with_cpu=True)
        ours_versions = _ours_versions()
        result["imagecorruptions"] = {
            "version": meta["imagecorruptions"], "python": meta.get("python"),
            "versions": meta.get("versions", {"numpy": meta["numpy"]}),
            "same_environment": meta.get("versions", {}).get("numpy") == ours_versions["numpy"]
            and meta.get("python") == sys.executable,
            "shims": meta["shims"], **ic}
        result["machine"]["versions"] = ours_versions
        for d in devices:
            mine = result[f"ours_{d}"]
            for key in ("wall", "cpu"):
                if f"images_per_s_{key}" in mine:
                    result.setdefault("speedup", {})[f"{d}_{key}"] = speedup(mine, ic, key)
        if args.passes > 1:
            steady = {k: {"wall_s": v["wall_s_steady"]} for k, v in ours["cpu"].items()}
            result["ours_cpu_steady"] = summary(steady, args.n_ours, with_cpu=False)
            result["speedup"]["cpu_wall_steady"] = speedup(result["ours_cpu_steady"], ic)
        if same:
            # The same few images on both sides: imagecorruptions cycles through n_theirs
            # images (at 224 px, 20 of them fit in the caches), while ours streams n_ours.
            result["ours_cpu_same_images"] = summary(same, args.n_theirs, with_cpu=False)
            result["speedup"]["cpu_wall_same_images"] = speedup(result["ours_cpu_same_images"], ic)
    result["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
