"""Corruption throughput: failmodes (batched torch) vs the `imagecorruptions` package.

    python bench/stressors.py [--n-ours 500] [--n-theirs 100] [--threads 2]
                              [--theirs-python /work/bench-venv/bin/python] [--out FILE]

Both sides corrupt the same 32-px CIFAR-10 test images with all 19 corruptions at
severities 1..5. Ours runs whole batches (CPU, and CUDA when present); imagecorruptions
1.1.2 (what users pip-install) runs one image at a time in its own venv
(``python3 -m venv /work/bench-venv && /work/bench-venv/bin/pip install
imagecorruptions==1.1.2``) through ``bench/_imagecorruptions_runner.py``, with the shims
it needs on today's numpy / scikit-image listed in the output. Prints JSON: images/s per
corruption, their ratio, and the whole suite (19 x 5 cells) per side.
"""
from __future__ import annotations

import argparse
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

from failmodes.stressors import get_stressor, suite  # noqa: E402

SEVERITIES = (1, 2, 3, 4, 5)
DATA = Path("/work/data/test")
FIDELITY = ROOT.parent / "shared" / "fidelity" / "cifar10c-dev.npz"


def load_images(n: int) -> tuple[np.ndarray, str]:
    """n CIFAR-10 test images, uint8 N×32×32×3: the JPEG tree if present, else the
    fidelity reference's 100 clean images tiled."""
    if DATA.is_dir():
        from PIL import Image
        files = sorted(DATA.glob("*/*.jpg"))
        # Round-robin over classes so any prefix is class-balanced.
        by_class = {}
        for f in files:
            by_class.setdefault(f.parent.name, []).append(f)
        order = [f for group in zip(*by_class.values()) for f in group][:n]
        return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in order]), str(DATA)
    clean = np.load(FIDELITY)["clean"]
    return np.resize(clean, (n, *clean.shape[1:])), f"{FIDELITY} (tiled)"


def time_ours(images: np.ndarray, names: list[str], device: str) -> dict:
    """{name: {"wall_s", "cpu_s"}} for all severities over the whole batch."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device).float() / 255.0
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    out = {}
    for name in names:
        stressor = get_stressor(name)
        stressor(x[:8], 3.0)  # warm-up: kernels, caches, lazy imports
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for s in SEVERITIES:
            stressor(x, float(s), seed=0)
        sync()
        out[name] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    return out


def time_theirs(images: np.ndarray, names: list[str], python: str) -> dict:
    runner = Path(__file__).with_name("_imagecorruptions_runner.py")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        np.save(path, images)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        r = subprocess.run([python, str(runner), str(path), str(len(images)), ",".join(names)],
                           capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"imagecorruptions runner failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def rates(timings: dict, n: int, key: str) -> dict:
    return {k: round(len(SEVERITIES) * n / v[key], 1) for k, v in timings.items()}


def suite_rate(timings: dict, n: int, key: str) -> float:
    return round(len(timings) * len(SEVERITIES) * n / sum(v[key] for v in timings.values()), 1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-ours", type=int, default=500)
    ap.add_argument("--n-theirs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads for ours (1: on a shared 2-core machine, 2 threads "
                         "spin-wait and run several times slower)")
    ap.add_argument("--no-theirs", action="store_true", help="time ours only")
    ap.add_argument("--theirs-python", default="/work/bench-venv/bin/python")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = suite("all")
    images, source = load_images(max(args.n_ours, args.n_theirs))
    result = {
        "what": "images/s per corruption (all 5 severities) and for the whole suite "
                f"({len(names)} corruptions x 5 severities), 32-px CIFAR-10 test images",
        "images": {"source": source, "n_ours": args.n_ours, "n_theirs": args.n_theirs},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "torch_threads": args.threads,
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "notes": [
            "ours: whole batches; imagecorruptions: one image at a time (its API), one thread",
            "imagecorruptions applies the ImageNet-C (224 px) severity tables at every image "
            "size, ours the CIFAR-10-C (32 px) ones here: the work per image differs (e.g. its "
            "glass_blur makes 2-3 passes with displacements up to 4 px); this compares speed, "
            "not fidelity (see shared/fidelity/check.py for that)",
            "cpu = process CPU time (robust on a shared machine); wall = elapsed time",
        ],
    }
    ours = {"cpu": time_ours(images[:args.n_ours], names, "cpu")}
    if torch.cuda.is_available():
        ours["cuda"] = time_ours(images[:args.n_ours], names, "cuda")
        result["machine"]["cuda"] = torch.cuda.get_device_name()
    for dev, t in ours.items():
        result[f"ours_{dev}"] = {
            "images_per_s_wall": rates(t, args.n_ours, "wall_s"),
            "images_per_s_cpu": rates(t, args.n_ours, "cpu_s") if dev == "cpu" else None,
            "suite_images_per_s_wall": suite_rate(t, args.n_ours, "wall_s"),
            "suite_images_per_s_cpu": suite_rate(t, args.n_ours, "cpu_s") if dev == "cpu" else None,
        }
    if args.no_theirs:
        result["imagecorruptions"] = "skipped (--no-theirs)"
    elif Path(args.theirs_python).exists():
        theirs = time_theirs(images[:args.n_theirs], names, args.theirs_python)
        t = theirs["per_corruption"]
        result["imagecorruptions"] = {
            "version": theirs["imagecorruptions"], "numpy": theirs["numpy"],
            "shims": theirs["shims"],
            "images_per_s_wall": rates(t, args.n_theirs, "wall_s"),
            "images_per_s_cpu": rates(t, args.n_theirs, "cpu_s"),
            "suite_images_per_s_wall": suite_rate(t, args.n_theirs, "wall_s"),
            "suite_images_per_s_cpu": suite_rate(t, args.n_theirs, "cpu_s"),
        }
        ic = result["imagecorruptions"]
        for dev in ours:
            mine = result[f"ours_{dev}"]
            for key in ("wall", "cpu"):
                if mine[f"images_per_s_{key}"] is None:
                    continue
                per = {k: round(mine[f"images_per_s_{key}"][k] / ic[f"images_per_s_{key}"][k], 1)
                       for k in names}
                result.setdefault("speedup", {})[f"{dev}_{key}"] = {
                    "per_corruption": per, "min": min(per.values()),
                    "slowest_vs_theirs": min(per, key=per.get),
                    "suite": round(mine[f"suite_images_per_s_{key}"] / ic[f"suite_images_per_s_{key}"], 1),
                }
    else:
        result["imagecorruptions"] = f"skipped: no venv python at {args.theirs_python}"
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
