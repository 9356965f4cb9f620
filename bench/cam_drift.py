"""Cost of the attention-drift pass: seconds per (corruption, severity) cell.

Prints JSON. Example: python bench/cam_drift.py --model cifar_resnet18 --width 16 --sample 200
"""
import argparse
import json
import time

import torch

from failmodes._device import cpu_description
from failmodes.analysis.cam import attention_drift
from failmodes.analysis.cam._core import compute_cams
from failmodes.data import load_dataset
from failmodes.models import create_model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cifar_resnet18")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--method", default="gradcam")
    ap.add_argument("--stressor", default="gaussian_noise")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = load_dataset("synthetic", "test")
    m = create_model(a.model, width=a.width, class_names=ds.classes).to(a.device).eval()
    compute_cams(m, torch.rand(4, 3, 32, 32, device=a.device), method=a.method)  # warm-up
    sev = [1.0, 2.0, 3.0, 4.0, 5.0]
    t = time.perf_counter()
    attention_drift(m, ds, [(a.stressor, sev, 0)], sample=a.sample, method=a.method)
    dt = time.perf_counter() - t
    per_cell = dt / (len(sev) + 1)  # + the clean pass
    print(json.dumps({"model": a.model, "width": a.width, "method": a.method, "sample": a.sample,
                      "device": a.device, "threads": a.threads, "stressor": a.stressor,
                      "seconds_total": round(dt, 2), "seconds_per_cell": round(per_cell, 3),
                      "estimate_19x5_minutes": round(per_cell * 96 / 60, 1),
                      "cams_per_s": round(a.sample * (len(sev) + 1) / dt, 1),
                      "torch": torch.__version__, "cpu": cpu_description()}))


if __name__ == "__main__":
    main()
