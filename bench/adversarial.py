"""PGD-10 speed: failmodes' pgd_linf vs torchattacks' PGD on the same model and images.

Prints one JSON object: images/s (wall and CPU time) of each implementation, alternating
rounds in one process so both see the same machine load, and the robust accuracy each
reaches (the model is randomly initialised unless --checkpoint is given, so accuracies
only show that both attacks do the same work).

    python bench/adversarial.py --width 16 --n 256 --eps 8 --rounds 3 --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

from failmodes._device import cpu_description


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--n", type=int, default=256, help="images per round")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--eps", type=float, default=8.0, help="L-inf budget in grey levels /255")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", default=None, help="a failmodes checkpoint (default: "
                                                       "a random-init cifar_resnet18)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import torchattacks

    from failmodes.models import create_model
    from failmodes.stressors import get_stressor

    torch.manual_seed(0)
    model = create_model(a.checkpoint or "cifar_resnet18", **({} if a.checkpoint
                                                              else {"width": a.width})).eval()
    x = torch.rand(a.n, 3, 32, 32).mul(255).round().div(255)
    y = torch.randint(0, 10, (a.n,))
    ours = get_stressor(f"pgd_linf[steps={a.steps}]")
    ref = torchattacks.PGD(model, eps=a.eps / 255, alpha=2.5 * a.eps / 255 / a.steps,
                           steps=a.steps, random_start=True)

    def run_ours(xb, yb):
        with torch.inference_mode():
            return ours(xb, a.eps, model=model, labels=yb)

    def run_ref(xb, yb):
        return ref(xb, yb)

    res = {"ours": {"wall": 0.0, "cpu": 0.0, "correct": 0},
           "torchattacks": {"wall": 0.0, "cpu": 0.0, "correct": 0}}
    for r in range(a.rounds + 1):          # round 0 warms up and is not counted
        for name, fn in (("ours", run_ours), ("torchattacks", run_ref)):
            t, c = time.perf_counter(), time.process_time()
            correct = 0
            for s in range(0, a.n, a.batch):
                adv = fn(x[s:s + a.batch], y[s:s + a.batch])
                with torch.no_grad():
                    correct += int((model(adv).argmax(1) == y[s:s + a.batch]).sum())
            if r:
                res[name]["wall"] += time.perf_counter() - t
                res[name]["cpu"] += time.process_time() - c
                res[name]["correct"] = correct
    out = {"bench": "pgd_linf", "model": a.checkpoint or f"cifar_resnet18 width {a.width}",
           "images_per_round": a.n, "rounds": a.rounds, "batch": a.batch, "eps_255": a.eps,
           "steps": a.steps, "threads": a.threads, "load_average": os.getloadavg(),
           "torch": torch.__version__, "torchattacks_version": torchattacks.__version__,
           "machine": cpu_description()}
    for name, v in res.items():
        n = a.n * a.rounds
        out[name] = {"images_per_s_wall": n / v["wall"], "images_per_s_cpu": n / v["cpu"],
                     "robust_accuracy": v["correct"] / a.n}
    out["speedup_cpu"] = out["ours"]["images_per_s_cpu"] / out["torchattacks"]["images_per_s_cpu"]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
