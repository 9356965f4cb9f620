"""The CAMs the drift pass computed, saved for the report's explorer: one compact file,
``OUT/cam_maps.npz``, beside ``cam.json`` (the report never recomputes a CAM: it would
need the model).

Arrays: ``models`` [M], ``stressors`` [G] and ``severities`` [G] (group g is one
(stressor, severity); clean is ``("clean", 0)``), ``indices`` [K] (dataset indices of the
fixed sample), ``maps`` uint8 [M, G, K, SIDE, SIDE] (each map min-max scaled to 0–255),
``present`` bool [M, G].

>>> save_cam_maps(out_dir, {"r18": {("clean", 0.0): raw0, ("fog", 3.0): raw}}, indices)  # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...store import CLEAN

CAM_MAPS = "cam_maps.npz"
SIDE = 8    # CIFAR-size CAM layers are 4×4 or 8×8; 8×8 keeps ImageNet maps readable as thumbs


def to_u8(cams, side: int = SIDE) -> np.ndarray:
    """float N×h×w (any scale) -> uint8 N×side×side, each map min-max scaled; a constant
    map becomes all zeros."""
    import torch
    import torch.nn.functional as TF
    t = torch.as_tensor(np.asarray(cams), dtype=torch.float32)[:, None]
    t = TF.interpolate(t, size=(side, side), mode="bilinear", align_corners=False)[:, 0]
    lo = t.amin(dim=(1, 2), keepdim=True)
    span = t.amax(dim=(1, 2), keepdim=True) - lo
    t = torch.where(span > 0, (t - lo) / span.clamp_min(1e-12), torch.zeros_like(t))
    return (t * 255).round().to(torch.uint8).numpy()


def save_cam_maps(out_dir: str | Path, maps: dict[str, dict[tuple[str, float], np.ndarray]],
                  indices) -> Path | None:
    """Write ``out_dir/cam_maps.npz`` from ``model -> (stressor, severity) -> uint8 maps
    K×SIDE×SIDE`` (``to_u8``) of the same K sample images; None when there is nothing."""
    groups = sorted({g for per in maps.values() for g in per},
                    key=lambda g: (g[0] != CLEAN, g[0], g[1]))
    if not groups:
        return None
    k = len(indices)
    arr = np.zeros((len(maps), len(groups), k, SIDE, SIDE), np.uint8)
    present = np.zeros((len(maps), len(groups)), bool)
    for i, per in enumerate(maps.values()):
        for j, g in enumerate(groups):
            if g in per:
                arr[i, j], present[i, j] = per[g], True
    path = Path(out_dir) / CAM_MAPS
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, models=np.array(list(maps)), stressors=np.array([g[0] for g in groups]),
                        severities=np.array([g[1] for g in groups], np.float64),
                        indices=np.asarray(indices, np.int64), maps=arr, present=present)
    tmp.replace(path)
    return path
