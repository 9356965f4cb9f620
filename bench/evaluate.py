"""Evaluation pipeline overhead: images/s of ``run_evaluation`` (stressor + model + per-image
rows + SQLite writes) vs the model alone on the very same (already stressed) images.

    python bench/evaluate.py --model cifar_resnet18 --width 64 --n 256 \\
        --stressors gaussian_noise,glass_blur --severity 3 --device cpu --threads 1

Prints one JSON object. ``overhead`` = pipeline seconds / model-only seconds − 1 (0.10 =
10 % slower); ``overhead_without_stressors`` removes the stressors' own compute, leaving
what the engine adds (batching, rows, store). Repeats alternate the two measurements and
keep the fastest of each, which damps a shared machine's noise.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="cifar_resnet18")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--data", default="synthetic", help="data spec (synthetic, or a CIFAR-10 folder PATH)")
    ap.add_argument("--n", type=int, default=256, help="images per cell")
    ap.add_argument("--stressors", default="gaussian_noise")
    ap.add_argument("--severity", type=float, default=3.0)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from failmodes._device import cpu_description, resolve_device
    from failmodes.evaluate import (
        EvalConfig,
        build_model,
        load_eval_dataset,
        resolve_config,
        run_evaluation,
    )
    from failmodes.stressors import get_stressor

    device = resolve_device(args.device)
    names = [s for s in args.stressors.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    cfg = EvalConfig(models={"m": {"arch": args.model, "arch_args": {"width": args.width}}}, data=args.data,
                     subset=args.n, stressors=names, severities=[args.severity],
                     batch_size=args.batch_size, device=str(device), out=str(work / "run"))
    ds, _ = load_eval_dataset(resolve_config(cfg))
    model, _ = build_model(cfg.models["m"], ds.classes, seed=cfg.seed, device=device)
    n, bs = len(ds), args.batch_size
    clean = ds.float_batch(0, n, device)

    # The stressed image sets, made once (and timed: the stressors' own compute).
    stress_s, cell_images = {}, [("clean", clean)]
    with torch.inference_mode():
        for name in names:
            st = get_stressor(name)
            st(clean[:bs], args.severity, seed=0, indices=ds.indices[:bs])  # warm-up
            _sync(device)
            t0 = time.perf_counter()
            x = torch.cat([st(clean[i:i + bs], args.severity, seed=cfg.seed,
                              indices=ds.indices[i:i + bs]) for i in range(0, n, bs)])
            _sync(device)
            stress_s[name] = time.perf_counter() - t0
            cell_images.append((name, x))
        model(clean[:bs])  # warm-up

    def model_only() -> tuple[float, dict]:
        per = {}
        with torch.inference_mode():
            for name, x in cell_images:
                _sync(device)
                t0 = time.perf_counter()
                for i in range(0, n, bs):
                    model(x[i:i + bs])
                _sync(device)
                per[name] = time.perf_counter() - t0
        return sum(per.values()), per

    def pipeline(k: int) -> tuple[float, dict]:
        out = work / f"run{k}"
        summary = run_evaluation(EvalConfig(**{**cfg.__dict__, "out": str(out)}), progress="off")
        from failmodes.store import ResultsStore
        with ResultsStore(out / "results.sqlite", readonly=True) as st:
            per = {c.stressor: n / c.images_per_s for c in st.cells()}
        shutil.rmtree(out)
        return summary.compute_s, per

    model_runs, pipe_runs = [], []
    for k in range(args.repeats):
        model_runs.append(model_only())
        pipe_runs.append(pipeline(k))
    t_model, per_model = min(model_runs, key=lambda r: r[0])
    t_pipe, per_pipe = min(pipe_runs, key=lambda r: r[0])
    shutil.rmtree(work, ignore_errors=True)
    images = n * len(cell_images)
    t_stress = sum(stress_s.values())
    print(json.dumps({
        "device": str(device), "device_name": (torch.cuda.get_device_name(device)
                                               if device.type == "cuda" else cpu_description()),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "model": args.model, "width": args.width, "data": args.data, "n_images_per_cell": n,
        "cells": [c for c, _ in cell_images], "severity": args.severity, "batch_size": bs,
        "repeats": args.repeats, "images": images,
        "model_only": {"seconds": round(t_model, 3), "images_per_s": round(images / t_model, 1)},
        "pipeline": {"seconds": round(t_pipe, 3), "images_per_s": round(images / t_pipe, 1)},
        "stressor_seconds": {k: round(v, 3) for k, v in stress_s.items()},
        "overhead": round(t_pipe / t_model - 1, 4),
        "overhead_without_stressors": round((t_pipe - t_stress) / t_model - 1, 4),
        "per_cell_images_per_s": {c: {"model_only": round(n / per_model[c], 1),
                                      "pipeline_cell": round(n / per_pipe[c], 1)}
                                  for c, _ in cell_images if c in per_pipe},
        "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }, indent=1))


if __name__ == "__main__":
    main()
