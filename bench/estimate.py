"""Could you have known without labels? The label-free estimators against every stored cell
of a run folder: per model and estimator, the mean absolute error (points) between
estimated and measured accuracy over the corruption cells, the bias, the interval coverage,
and the KS test's detection and false-alarm rates on 500-image batches.

Prints JSON. Runs the ``estimate`` analysis into a temporary folder (the run folder is only
read). Example: python bench/estimate.py runs/quick [runs/seed-cpu ...]
"""
import argparse
import json
import tempfile
import time

import torch

from failmodes._device import cpu_description
from failmodes.analysis.estimate import estimate_run


def _bench(run: str, n_boot: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        res = estimate_run(run, tmp, n_boot=n_boot)
    dt = time.perf_counter() - t
    models = {}
    for m, pm in res.per_model.items():
        rows = [r for r in res.tables.get("estimators", []) if r["model"] == m]
        models[m] = {
            "cells": pm["cells"], "population": pm["population"],
            "source_accuracy": round(100 * pm["source_accuracy"], 2),
            "best_estimator": pm["best_estimator"],
            "best_mae_points": None if pm["best_mae"] is None else round(100 * pm["best_mae"], 2),
            "mae_points": {r["estimator"]: round(100 * r["mae"], 2) for r in rows},
            "bias_points": {r["estimator"]: round(100 * r["bias"], 2) for r in rows},
            "coverage": {r["estimator"]: round(r["coverage"], 3) for r in rows},
            "ks_detection_rate": pm["detection_rate"], "ks_false_alarm_rate": pm["false_alarm_rate"],
            "cells_where_all_fail": sum(1 for r in res.tables.get("all_fail", []) if r["model"] == m),
        }
    return {"run": run, "models": models, "n_boot": n_boot, "seconds": round(dt, 1),
            "notes": res.notes}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", help="run folders holding results.sqlite")
    ap.add_argument("--n-boot", type=int, default=400)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    print(json.dumps({"runs": [_bench(r, a.n_boot, a.threads) for r in a.runs],
                      "torch": torch.__version__, "cpu": cpu_description()}, indent=1))


if __name__ == "__main__":
    main()
