"""Time of the slices analysis on a quick-sized store: N images × every benchmark and extra
corruption at severities 1–5 (95 cells) + clean, per model, on T CPU threads.

Builds a run folder of crafted predictions (no model is run: a store as an evaluation
writes it, with logits) on DATA (default: N synthetic shapes written as an image folder),
then times ``run_slices`` with ``features: logits`` (the clustering on stored logits) and,
separately, the penultimate-feature pass the default ``features: penultimate`` adds: one
forward pass of the N clean images through a width-16 CIFAR ResNet-18 (random weights: the
time does not depend on them). Prints JSON.

Errors are planted so the search has something to find: images whose background is blue are
wrong 3× as often, and each image has a fixed robustness, so an image that breaks at
severity s stays broken above it (breaking points are meaningful).

    python bench/slices.py --images 10000 --threads 2 --out /tmp/bench-slices
    python bench/slices.py --images 500 --stressors 3 --out /tmp/bench-slices-smoke
"""
import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch


def write_folder(root: Path, n: int) -> str:
    from PIL import Image

    from failmodes.data.synthetic import CLASSES, make_synthetic
    images, labels = make_synthetic(n, seed=2)
    for i in range(n):
        d = root / "test" / f"{int(labels[i]):02d}_{CLASSES[int(labels[i])]}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i].numpy()).save(d / f"{i:05d}.png")
    return f"imagefolder:{root}"


def build_run(out: Path, data: str | None, n: int, models: int, stressors: int) -> Path:
    from failmodes.analysis.slices import image_attributes
    from failmodes.evaluate.inputs import load_eval_dataset
    from failmodes.store import CellKey, ResolvedEvalConfig, ResultsStore, per_image_rows
    from failmodes.stressors import list_stressors
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    data = data or write_folder(out / "data", n)
    cfg = {"data": data, "split": "test", "subset": n, "seed": 0, "models": {}}
    (out / "eval_config.json").write_text(json.dumps({"config": cfg}))
    ds, key = load_eval_dataset(ResolvedEvalConfig(**cfg))
    labels, idx = ds.labels.numpy(), ds.indices.numpy()
    c = len(ds.classes)
    attrs = image_attributes(ds.images)
    blue = attrs.categorical["background"] == 5            # COLOURS.index("blue")
    names = [s for f in ("noise", "blur", "weather", "digital") for s in list_stressors(family=f)]
    names = names[:stressors]
    rng = np.random.default_rng(0)
    with ResultsStore(out / "results.sqlite") as st:
        st.start_run("bench/slices.py", cfg, {})
        for m in range(models):
            name = f"model-{m}"
            st.register_model(name, spec="fake", arch="fake", weights_hash=name,
                              class_names=ds.classes)
            robust = rng.random(len(labels)) / np.where(blue, 3.0, 1.0)   # low breaks early
            for s, v in [("clean", 0.0)] + [(s, float(v)) for s in names for v in range(1, 6)]:
                ok = robust > 0.08 + 0.12 * v * rng.uniform(0.6, 1.4)
                wrong = (labels + rng.integers(1, c, len(labels))) % c
                z = rng.normal(0, 1, (len(labels), c)).astype(np.float32)
                top = np.where(ok, labels, wrong)
                z[np.arange(len(labels)), top] += 4.0
                st.write_cell(CellKey(name, key, s, v, 0), per_image_rows(
                    torch.as_tensor(z), torch.as_tensor(labels), torch.as_tensor(idx)))
    return out


def feature_pass(run: Path) -> dict:
    from failmodes.analysis.slices import penultimate_features
    from failmodes.evaluate import open_run
    from failmodes.models import create_model
    with open_run(run) as ctx:
        ds = ctx.dataset()
    model = create_model("cifar_resnet18", width=16, num_classes=len(ds.classes)).eval()
    t = time.perf_counter()
    feats = []
    for i in range(0, len(ds), 512):
        x = ds.images[i:i + 512].permute(0, 3, 1, 2).float().div(255.0)
        feats.append(penultimate_features(model, x))
    return {"seconds": round(time.perf_counter() - t, 2),
            "features": int(np.concatenate(feats).shape[1]),
            "model": "cifar_resnet18 width 16 (random weights)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--models", type=int, default=1)
    ap.add_argument("--stressors", type=int, default=19, help="corruptions (19 = 95 cells)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=None, help="data spec (default: synthetic image folder)")
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--out", default="/tmp/bench-slices")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from failmodes._device import cpu_description
    from failmodes.analysis.slices import run_slices
    t = time.perf_counter()
    run = build_run(Path(args.out), args.data, args.images, args.models, args.stressors)
    built = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    res = run_slices(run, run / "analysis", features="logits", n_boot=args.n_boot)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    first = next(iter(res.per_model))
    print(json.dumps({
        "benchmark": "slices analysis", "images": args.images, "models": args.models,
        "cells_per_model": res.per_model[first]["cells"], "threads": args.threads,
        "store_build_s": round(built, 1), "analysis_wall_s": round(wall, 1),
        "analysis_cpu_s": round(cpu, 1), "features": "stored logits",
        "slices_tested_per_cell": res.per_model[first]["slices_tested_per_cell"],
        "clean_top_slice": next((r["sentence"] for r in res.tables["slices"]
                                 if r["stressor"] == "clean"), None),
        "penultimate_feature_pass": feature_pass(run), "cpu": cpu_description(),
        "torch": torch.__version__}, indent=1))


if __name__ == "__main__":
    main()
