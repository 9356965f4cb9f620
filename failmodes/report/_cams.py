"""The CAM overlays the explorer shows: read from the maps the cam analysis saved
(``RUN/analysis/cam_maps.npz``, layout in ``analysis/cam/maps.py``), never recomputed
(Grad-CAM needs the model)."""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from ..analysis.cam.maps import CAM_MAPS, SIDE


def _area(maps: np.ndarray, side: int) -> np.ndarray:
    import torch
    import torch.nn.functional as TF
    t = torch.as_tensor(maps, dtype=torch.float32)
    lead = t.shape[:-2]
    t = TF.adaptive_avg_pool2d(t.reshape(-1, 1, *t.shape[-2:]), side)
    return t.reshape(*lead, side, side).round().clamp(0, 255).to(torch.uint8).numpy()


def pack_cams(run_dir: Path, models: list[str], idx: np.ndarray) -> tuple[dict | None, str]:
    """``(payload["cams"], "")``, or ``(None, why)`` when the run has no saved maps."""
    from ._collect import analysis_json
    where = analysis_json(run_dir, "cam")
    path = (where.parent if where else Path(run_dir) / "analysis") / CAM_MAPS
    if not path.is_file():
        return None, ""
    try:
        with np.load(path, allow_pickle=False) as z:
            names, maps = [str(m) for m in z["models"]], z["maps"]
            groups = [[str(s), float(v)] for s, v in zip(z["stressors"], z["severities"], strict=True)]
            present, sample = z["present"].astype(bool), z["indices"].astype(np.int64)
    except (OSError, KeyError, ValueError) as e:
        return None, f"The saved CAMs ({path.name}) are unreadable ({e}); no overlays."
    keep = [names.index(m) if m in names else -1 for m in models]
    pos = np.searchsorted(idx, sample)
    pos = np.where((pos < len(idx)) & (idx[np.minimum(pos, len(idx) - 1)] == sample), pos, -1)
    small = _area(maps, SIDE) if maps.shape[-1] != SIDE else maps
    out = np.zeros((len(models), len(groups), len(sample), SIDE, SIDE), np.uint8)
    have = np.zeros((len(models), len(groups)), bool)
    for i, k in enumerate(keep):
        if k >= 0:
            out[i], have[i] = small[k], present[k]
    return {"side": SIDE, "groups": groups, "pos": pos.astype(int).tolist(),
            "present": have.astype(int).ravel().tolist(),
            "maps": base64.b64encode(out.tobytes()).decode("ascii")}, ""
