"""The fast recipe over several seeds, against a standard recipe given the same wall clock.

For each seed: train ``cifar_fastnet`` with the ``fast`` recipe, then the reference
(``cifar_resnet18`` width 16, ``baseline-cosine``) with as many epochs as fit in the wall
time the fast run took (its throughput is probed first; its cosine schedule then completes,
so the reference is not cut off at a high learning rate). Both are evaluated on the same
test images, plain forward and flip-averaged (TTA). Prints one JSON object: per-run rows,
mean and spread (std, min, max) of accuracy, wall and CPU time, and the machine's load.

    # the full benchmark (~5 h on 2 quiet cores)
    PYTHONPATH=. python bench/fast_recipe.py --data /path/to/cifar10-tree --seeds 5 --threads 2
    # a reduced check that the benchmark works (minutes; accuracies mean nothing)
    PYTHONPATH=. python bench/fast_recipe.py --data /path/to/tree --seeds 2 --epochs 1 \\
        --subset 1000 --test-subset 1000 --threads 1

``--anchor airbench`` (the default when the PyPI ``airbench`` package is importable:
``pip install --no-deps airbench==0.1.8``) also trains airbench's own ``airbench94`` per seed
on the same train and test images for the same epochs, changed only as far as a CPU run needs
(``bench/_airbench_runner.py``: device and fp32), in a subprocess with the same threads;
``--no-reference`` drops the ResNet-18 reference (fast vs airbench only).

CPU time is the process's (all threads); wall time includes data set-up and the per-epoch
test evaluation the trainer does, not the bench's own evaluation.

With ``--out`` the benchmark is resumable: each finished run's row is written to
``OUT/rows.json`` as soon as it is measured, and a rerun of the same command skips them and
goes on with the next. A run that was killed part-way is trained again from scratch (its
wall time would otherwise mix two sessions). The JSON printed at the end says
``"complete": false`` while seeds are missing; ``--partial`` prints it for what exists and
trains nothing.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from failmodes._device import cpu_description
from failmodes.config import override
from failmodes.data import load_dataset
from failmodes.models.tta import with_flip_tta
from failmodes.train import load_recipe, train_model


@torch.no_grad()
def accuracy(model, images, labels, batch=500) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch):
        x = images[i:i + batch].permute(0, 3, 1, 2).float().div_(255.0)
        correct += int((model(x).argmax(1) == labels[i:i + batch]).sum())
    return correct / len(labels)


def timed_train(cfg, out: Path) -> tuple[object, dict]:
    load0, wall0, cpu0 = os.getloadavg()[0], time.perf_counter(), time.process_time()
    result = train_model(cfg, out, progress=False)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return result, {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                    "load_start": load0, "load_end": os.getloadavg()[0],
                    "epochs": cfg.epochs, "train_test_acc": result.test_acc}


def probe_images_per_s(cfg, n_train: int, out: Path) -> float:
    """The reference's training speed (images/s): a 1-epoch run of a few batches."""
    probe = override(cfg, epochs=1, subset=min(n_train, 4 * cfg.batch_size),
                     test_subset=cfg.batch_size)
    return train_model(probe, out, progress=False).history[0]["images_per_s"]


def fitting_epochs(budget_s: float, images_per_s: float, n_train: int, n_test: int) -> int:
    """Epochs of the reference that fit in ``budget_s``: each trains on n_train images and
    tests on 1000, the last on all n_test (a test image costs ~1/3 of a training image:
    a forward pass without the backward)."""
    per_epoch = (n_train + 1000 / 3) / images_per_s
    final = (n_test - 1000) / 3 / images_per_s
    return max(1, math.floor((budget_s - final) / per_epoch))


def summary(rows: list[dict], keys=("acc", "tta_acc", "wall_s", "cpu_s", "epochs")) -> dict:
    out = {}
    for k in keys:
        v = [r[k] for r in rows]
        out[k] = {"mean": round(statistics.fmean(v), 5),
                  "std": round(statistics.stdev(v), 5) if len(v) > 1 else 0.0,
                  "min": min(v), "max": max(v)}
    return out


def load_rows(path: Path | None, config: dict) -> dict:
    """Rows measured by an earlier run of the same configuration (seeds may differ)."""
    if path is None or not path.exists():
        return {}
    state = json.loads(path.read_text())
    if state.get("config") != config:
        raise SystemExit(f"error: {path} holds runs of another configuration "
                         f"({state.get('config')}); use another --out")
    return state["rows"]


def save_rows(path: Path | None, config: dict, done: dict) -> None:
    if path is None:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"config": config, "rows": done}, indent=1))
    os.replace(tmp, path)


def airbench_row(args, seed: int, epochs: float) -> dict:
    """airbench94 trained by its own code in a subprocess (its CPU shims stay out of this
    process); the row it prints."""
    cmd = [sys.executable, str(Path(__file__).with_name("_airbench_runner.py")),
           "--data", args.data, "--epochs", str(epochs), "--seed", str(seed),
           "--threads", str(args.threads)]
    cmd += ["--subset", str(args.subset)] if args.subset else []
    cmd += ["--test-subset", str(args.test_subset)] if args.test_subset else []
    load0 = os.getloadavg()[0]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"error: the airbench run failed: {r.stderr.strip().splitlines()[-1:]}")
    row = json.loads(r.stdout.strip().splitlines()[-1])
    return {**row, "load_start": load0, "load_end": os.getloadavg()[0]}


def fresh(out: Path) -> Path:
    """A run folder with nothing of an interrupted earlier attempt in it."""
    if out.exists():
        shutil.rmtree(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="cifar10", help="a load_dataset spec")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--epochs", type=int, default=None, help="override the fast recipe's")
    ap.add_argument("--width", type=int, default=None, help="override the fast model's width")
    ap.add_argument("--subset", type=int, default=None, help="training subset (both recipes)")
    ap.add_argument("--test-subset", type=int, default=None, help="evaluate on N test images")
    ap.add_argument("--reference-recipe", default="baseline-cosine")
    ap.add_argument("--reference-model", default="cifar_resnet18")
    ap.add_argument("--reference-width", type=int, default=16)
    ap.add_argument("--anchor", choices=("airbench", "none"),
                    default="airbench" if importlib.util.find_spec("airbench") else "none",
                    help="also train airbench's own airbench94 per seed (default when the "
                         "airbench package is importable)")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the ResNet-18 reference (fast vs the anchor only)")
    ap.add_argument("--out", default=None,
                    help="keep the runs and rows.json here; rerunning resumes (default: temp)")
    ap.add_argument("--partial", action="store_true",
                    help="print the JSON for the runs in OUT/rows.json and train nothing")
    args = ap.parse_args()
    if args.partial and args.out is None:
        ap.error("--partial needs --out")
    torch.set_num_threads(args.threads)

    test = load_dataset(args.data, "test")
    rows = torch.arange(len(test)) if args.test_subset is None else \
        test.subset(args.test_subset, seed=42).indices
    x_test, y_test = torch.as_tensor(test.images)[rows], test.labels[rows]
    tmp = tempfile.TemporaryDirectory() if args.out is None else None
    root = Path(args.out or tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    state = root / "rows.json" if args.out is not None else None
    # what the rows depend on (not --seeds / --first-seed / --partial / --out)
    sig = {k: v for k, v in vars(args).items()
           if k not in ("seeds", "first_seed", "partial", "out")}
    done = load_rows(state, sig)  # "fast-<seed>" / "ref-<seed>" -> row
    # per-epoch test on 1000 images (the trainer's last epoch still tests on all of them)
    common = dict(data=args.data, subset=args.subset, threads=args.threads, device="cpu",
                  test_subset=1000)
    seeds = [args.first_seed + i for i in range(args.seeds)]
    for seed in ([] if args.partial else seeds):
        if f"fast-{seed}" not in done:
            cfg = override(load_recipe(args.recipe), seed=seed, epochs=args.epochs,
                           width=args.width, **common)
            result, row = timed_train(cfg, fresh(root / f"fast-{seed}"))
            n_train = torch.load(result.checkpoint,
                                 weights_only=True)["extra"]["data"]["n_train"]
            row.update(seed=seed, n_train=n_train, acc=accuracy(result.model, x_test, y_test),
                       tta_acc=accuracy(with_flip_tta(result.model), x_test, y_test))
            done[f"fast-{seed}"] = row
            save_rows(state, sig, done)
        row = done[f"fast-{seed}"]
        if args.anchor == "airbench" and f"anchor-{seed}" not in done:
            done[f"anchor-{seed}"] = airbench_row(args, seed, row["epochs"])
            save_rows(state, sig, done)
        if not args.no_reference and f"ref-{seed}" not in done:
            ref = override(load_recipe(args.reference_recipe), model=args.reference_model,
                           width=args.reference_width, seed=seed, **common)
            speed = probe_images_per_s(ref, row["n_train"], fresh(root / f"probe-{seed}"))
            epochs = fitting_epochs(row["wall_s"], speed, row["n_train"], len(test))
            result, rrow = timed_train(override(ref, epochs=epochs),
                                       fresh(root / f"ref-{seed}"))
            rrow.update(seed=seed, images_per_s=speed, budget_s=row["wall_s"],
                        acc=accuracy(result.model, x_test, y_test),
                        tta_acc=accuracy(with_flip_tta(result.model), x_test, y_test))
            done[f"ref-{seed}"] = rrow
            save_rows(state, sig, done)
    fast_rows = [done[f"fast-{s}"] for s in seeds if f"fast-{s}" in done]
    ref_rows = [done[f"ref-{s}"] for s in seeds if f"ref-{s}" in done]
    anchor_rows = [done[f"anchor-{s}"] for s in seeds if f"anchor-{s}" in done]

    report = {
        "bench": "fast_recipe",
        "config": {**vars(args), "fast": args.recipe, "test_n": len(rows)},
        "complete": len(fast_rows) == len(seeds)
        and (args.no_reference or len(ref_rows) == len(seeds))
        and (args.anchor == "none" or len(anchor_rows) == len(seeds)),
        "machine": {"cores": os.cpu_count(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "cpu": cpu_description()},
        "fast": {"summary": summary(fast_rows) if fast_rows else {}, "runs": fast_rows},
        "reference": {"recipe": args.reference_recipe, "model": args.reference_model,
                      "width": args.reference_width,
                      "summary": summary(ref_rows) if ref_rows else {},
                      "runs": ref_rows},
    }
    if args.anchor == "airbench":
        report["anchor"] = {"what": "airbench94 (PyPI airbench, its own code and hyperparameters; "
                                    "CPU changes listed per run), same data, epochs and threads",
                            "summary": summary(anchor_rows) if anchor_rows else {},
                            "runs": anchor_rows}
        pairs = [(done[f"fast-{s}"], done[f"anchor-{s}"]) for s in seeds
                 if f"fast-{s}" in done and f"anchor-{s}" in done]
        if pairs:
            report["fast_vs_anchor"] = {
                "acc_points": round(100 * statistics.fmean(f["acc"] - a["acc"] for f, a in pairs), 2),
                "wall_ratio": round(statistics.fmean(f["wall_s"] / a["wall_s"] for f, a in pairs), 3),
                "seeds": len(pairs)}
    print(json.dumps(report, indent=1))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
