"""Time a whole study (default: the offline demo) step by step; prints JSON.

    python bench/study.py                          # demo preset, torch's default threads
    python bench/study.py --preset quick --data PATH/TO/CIFAR10 --threads 2
    python bench/study.py --threads 1              # CPU time free of thread spin-waits

Wall-clock seconds depend on what else runs on the machine; CPU seconds with one thread
are a load-independent upper bound of the work (two threads finish it in less wall time).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--data", default=None, help="override the preset's data")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    args = ap.parse_args()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from failmodes.study import load_preset, resolve_study, run_study
    out = args.out or tempfile.mkdtemp(prefix=f"bench-{args.preset}-")
    cfg = resolve_study(load_preset(args.preset), out=out, data=args.data)
    t, c = time.perf_counter(), time.process_time()
    res = run_study(cfg, command=f"python bench/study.py --preset {args.preset}")
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    state = json.loads((res.out_dir / "study_state.json").read_text())
    print(json.dumps({
        "preset": args.preset, "data": cfg.data, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "threads": torch.get_num_threads(), "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2), "machine": platform.platform(),
        "failures": res.failures, "report": str(res.report),
        "steps": {k: {"wall_s": v.get("seconds"), "cpu_s": v.get("cpu_s")}
                  for k, v in state["steps"].items()},
    }, indent=1))


if __name__ == "__main__":
    main()
