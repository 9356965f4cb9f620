"""Computing one group of cells: stress each batch once, run every model of the group,
turn logits into store rows."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from ..data import Dataset
from ..store import CLEAN, MAIN, OFFICIAL, per_image_rows
from ..stressors import get_stressor
from ._progress import Progress
from .grid import Group
from .inputs import official_dataset

if TYPE_CHECKING:
    from .runner import Plan

# Clean float batches are kept for reuse across cells up to this many bytes (on device).
CLEAN_CACHE_BYTES = 512 * 2 ** 20


class CleanCache:
    """Clean float batches kept on the device across cells while they fit the budget."""

    def __init__(self, device: torch.device, budget: int = CLEAN_CACHE_BYTES):
        self.device, self.budget, self.used, self.batches = device, budget, 0, {}

    def get(self, ds: Dataset, key: str, start: int, stop: int) -> torch.Tensor:
        k = (key, start, stop)
        x = self.batches.get(k)
        if x is None:
            x = ds.float_batch(start, stop, self.device)
            if self.used + x.numel() * 4 <= self.budget:
                self.batches[k] = x
                self.used += x.numel() * 4
        return x


def group_dataset(plan: Plan, g: Group) -> tuple[Dataset, str]:
    """The data set and dataset key the cells of ``g`` are computed on."""
    if g.source == OFFICIAL:
        return official_dataset(plan.config, g.stressor, g.severity, plan.data[MAIN].classes)
    return plan.data[g.source], plan.keys[g.source]


def compute_group(plan: Plan, g: Group, cache: CleanCache, bar: Progress):
    """Stress each batch once, run every model of ``g``; returns (per-model rows dict or
    failure reason string, stats)."""
    c = plan.config
    ds, key = group_dataset(plan, g)
    stressor = get_stressor(g.stressor) if g.stressor != CLEAN and g.source != OFFICIAL else None
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    logits: dict[str, list[torch.Tensor]] = {m: [] for m in g.models}
    t_stress, t_model = 0.0, dict.fromkeys(g.models, 0.0)
    n = len(ds)
    with torch.inference_mode():
        for start in range(0, n, c.batch_size):
            stop = min(start + c.batch_size, n)
            if g.source == OFFICIAL:
                x = ds.float_batch(start, stop, plan.device)
            else:
                x = cache.get(ds, key, start, stop)
            if stressor is not None:
                t0 = time.perf_counter()
                x = stressor(x, g.severity, seed=c.seed, indices=ds.indices[start:stop])
                t_stress += time.perf_counter() - t0
            for m in g.models:
                t0 = time.perf_counter()
                logits[m].append(plan.models[m](x))
                t_model[m] += time.perf_counter() - t0
            bar.advance_images((stop - start) * len(g.models))
        outcomes = []
        for m in g.models:
            z = torch.cat(logits[m]) if logits[m] else torch.empty(0, plan.models[m].num_classes)
            finite = torch.isfinite(z).all(dim=1)
            if not bool(finite.all()):
                bad = (~finite).nonzero().flatten()
                outcomes.append(f"non-finite logits for {len(bad)} of {n} images (first at "
                                f"dataset index {int(ds.indices[int(bad[0])])})")
                continue
            rows = per_image_rows(z, ds.labels, ds.indices)
            if not c.store_logits:
                rows.pop("logits")
            outcomes.append(rows)
    ips = {m: n / max(t_stress + t_model[m], 1e-9) for m in g.models}
    return outcomes, {"started": started, "ips": ips, "n": n}
