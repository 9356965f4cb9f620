"""Write a candidate file for ``shared/fidelity/check.py`` from its reference's clean images.

    python -m failmodes.stressors.fidelity REF.npz OUT.npz [--only a,b] [--seed 0]

Image *i* of the reference is corrupted with dataset index *i*, one batch per cell.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .registry import get_stressor, suite

SEVERITIES = (1, 2, 3, 4, 5)


def make_candidate(clean: np.ndarray, names: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    """{<name>_s<k>: uint8 N×32×32×3} for every name and severity 1..5, plus ``clean``."""
    x = torch.from_numpy(clean).permute(0, 3, 1, 2).float() / 255.0
    out = {"clean": clean}
    for name in names:
        stressor = get_stressor(name)
        for s in SEVERITIES:
            y = stressor(x, float(s), seed=seed)
            out[f"{name}_s{s}"] = (y * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", default=None, help="comma-separated corruptions (default: all 19)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    clean = np.load(args.ref)["clean"]
    names = args.only.split(",") if args.only else suite("all")
    # numpy's stub lets **arrays bind allow_pickle: bool; the keys are corruption names.
    np.savez_compressed(args.out, **make_candidate(clean, names, args.seed))  # type: ignore[arg-type]
    print(f"wrote {args.out} ({len(names)} corruptions x {len(SEVERITIES)} severities)")


if __name__ == "__main__":
    main()
