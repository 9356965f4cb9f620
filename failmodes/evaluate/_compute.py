"""Computing one group of cells: stress each batch once, run every model of the group,
turn logits into store rows."""
from __future__ import annotations

import contextlib
import time

import torch

from .._device import exact_fp32, to_device
from ..data import Dataset
from ..models.errors import first_line
from ..store import CLEAN, MAIN, OFFICIAL, per_image_rows, timestamp
from ..stressors import get_stressor
from ..stressors.finish import finish_images
from ._memory import is_out_of_memory, out_of_memory
from ._progress import Progress
from .config import EvalError, _fmt
from .grid import Group
from .inputs import official_dataset
from .plan import Plan

# Clean float batches are kept for reuse across cells up to this many bytes (on device).
CLEAN_CACHE_BYTES = 512 * 2 ** 20


class CleanCache:
    """Clean float batches kept on the device across cells while they fit the budget."""

    def __init__(self, device: torch.device, budget: int = CLEAN_CACHE_BYTES):
        self.device, self.budget, self.used = device, budget, 0
        self.batches: dict[tuple[str, int, int], torch.Tensor] = {}

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
        ds, key = official_dataset(plan.config, g.stressor, g.severity, plan.data[MAIN].classes)
        if key != g.dataset:  # a released tree whose cells hold different image counts
            raise EvalError(f"{plan.config.official}: {g.stressor} {_fmt(g.severity)} holds "
                            f"{key.partition(':')[2]} images where the plan has {g.dataset}")
        return ds, key
    return plan.data[g.source], plan.keys[g.source]


def compute_group(plan: Plan, g: Group, cache: CleanCache, bar: Progress):
    """Stress each batch once, run every model of ``g``; returns (per-model rows dict or
    failure reason string, stats).

    An attack (a stressor that needs the model) is run once per model on that model: its
    cells are per model, never the same images across models. Its stats also carry, per
    model, the attack's mean loss and success rate (share of the images the model got
    right clean that the attack turns wrong).
    """
    c = plan.config
    ds, key = group_dataset(plan, g)
    stressor = get_stressor(g.stressor) if g.stressor != CLEAN and g.source != OFFICIAL else None
    attack = stressor is not None and stressor.needs_model
    started = timestamp()
    logits: dict[str, list[torch.Tensor]] = {m: [] for m in g.models}
    clean_right: dict[str, list[torch.Tensor]] = {m: [] for m in g.models}
    t_stress, t_model = 0.0, dict.fromkeys(g.models, 0.0)
    failed: dict[str, str] = {}  # model -> why its cell failed (its network raised)
    n = len(ds)
    batch = plan.batch_size or c.batch_size
    assert ds.indices is not None  # set in Dataset.__post_init__
    # The labels an attack is scored against: on the device once per cell, not per batch.
    labels_on_device = to_device(ds.labels, plan.device) if attack else None
    try:
        with torch.inference_mode():
            for start in range(0, n, batch):
                stop = min(start + batch, n)
                if g.source == OFFICIAL:
                    x = ds.float_batch(start, stop, plan.device)
                else:
                    x = cache.get(ds, key, start, stop)
                idx = ds.indices[start:stop]
                if stressor is not None and not attack:
                    t0 = time.perf_counter()
                    with exact_fp32(plan.device):  # the 8-bit grid as on the CPU: no TF32
                        x = stressor(x, g.severity, seed=c.seed, indices=idx)
                        x = finish_images(x, c.finish)
                    t_stress += time.perf_counter() - t0
                for m in g.models:
                    if m in failed:
                        continue
                    t0 = time.perf_counter()
                    labels = (None if labels_on_device is None
                              else labels_on_device[start:stop])
                    try:
                        logits[m].append(_logits(plan, m, x, stressor if attack else None,
                                                 g.severity, idx, labels, clean_right[m]))
                    except (Exception, SystemExit) as e:  # the user's network raised
                        if is_out_of_memory(e):
                            raise out_of_memory(e, stop - start, ds.image_size,
                                                plan.device) from None
                        failed[m] = (f"the model raised {first_line(e)} on the batch of "
                                     f"dataset indices {int(idx[0])}-{int(idx[-1])}")
                    t_model[m] += time.perf_counter() - t0
                bar.advance_images((stop - start) * len(g.models))
    except (RuntimeError, MemoryError) as e:  # a stressor or the clean batch ran out
        if is_out_of_memory(e):
            raise out_of_memory(e, batch, ds.image_size, plan.device) from None
        raise
    with torch.inference_mode():
        outcomes: list[dict | str] = []  # per model: rows, or why the cell failed
        attack_stats: dict[str, dict] = {}
        for m in g.models:
            if m in failed:
                outcomes.append(failed[m])
                continue
            z = torch.cat(logits[m]) if logits[m] else torch.empty(0, plan.models[m].num_classes)
            finite = torch.isfinite(z).all(dim=1)
            if not bool(finite.all()):
                bad = (~finite).nonzero().flatten()
                outcomes.append(f"non-finite logits for {len(bad)} of {n} images (first at "
                                f"dataset index {int(ds.indices[int(bad[0])])})")
                continue
            rows = per_image_rows(z, ds.labels, ds.indices)
            if attack:
                assert labels_on_device is not None  # set above for an attack
                attack_stats[m] = _attack_stats(z, labels_on_device, torch.cat(clean_right[m]))
            if not c.store_logits:
                rows.pop("logits")
            outcomes.append(rows)
    ips = {m: n / max(t_stress + t_model[m], 1e-9) for m in g.models}
    return outcomes, {"started": started, "ips": ips, "n": n, "attack": attack_stats}


def _logits(plan: Plan, m: str, x: torch.Tensor, attack, severity: float, idx,
            labels: torch.Tensor | None, clean_right: list[torch.Tensor]) -> torch.Tensor:
    """Model ``m``'s float32 logits on the batch ``x`` (in NHWC memory and under bf16
    autocast when the config asks); an attack first records, on the device, which images
    the model gets right clean, then attacks them on that model."""
    model = plan.models[m]
    if plan.config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(plan):
        if attack is None:
            return model(x).float()
        assert labels is not None  # an attack is scored against the labels
        clean_right.append(model(x).argmax(1) == labels)
        return model(attack(x, severity, seed=plan.config.seed, indices=idx, model=model,
                            labels=labels)).float()


def _autocast(plan: Plan):
    if plan.config.autocast == "bf16":
        return torch.autocast(plan.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _attack_stats(logits: torch.Tensor, labels: torch.Tensor, clean_right: torch.Tensor) -> dict:
    """Mean loss and success rate of an attack cell, computed where the logits are and
    read back in one transfer."""
    z = logits.double()
    y = labels.to(z.device)
    right = clean_right.to(z.device)
    wrong = z.argmax(1) != y
    loss, n_right, n_turned = torch.stack([
        torch.nn.functional.cross_entropy(z, y), right.sum().double(),
        (wrong & right).sum().double()]).tolist()
    n_right = int(n_right)
    success = n_turned / n_right if n_right else float("nan")
    return {"loss": loss, "success_rate": success, "n_clean_correct": n_right}

