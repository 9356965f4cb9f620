"""Running an evaluation: every missing cell of the grid into ``<out>/results.sqlite``.

Only cells missing from the store are computed, each written in one transaction. The
stressed images of a (dataset, stressor, severity) are made once per batch and fed to every
model that still needs that cell, and the stressor's randomness depends only on (stressor,
severity, seed, dataset index): two models, two batch sizes or two ranks see the very same
corrupted images.

>>> cfg = EvalConfig(models={"cnn": "runs/cnn/model.pt"}, data="synthetic", subset=500,
...                  stressors=["gaussian_noise"], severities="1:5:1", out="runs/cnn-eval")
>>> summary = run_evaluation(cfg)          # doctest: +SKIP
>>> summary.computed, summary.skipped      # doctest: +SKIP
(6, 0)
"""
from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from .._device import rank_device, resolve_device
from ..config import from_dict, save_resolved, to_dict
from ..models import Classifier, library_versions
from ..models.checkpoint import differing_keys, legacy_weights_hash
from ..store import MAIN, ResolvedEvalConfig, ResultsStore, RunFolder
from ..store.sanity import sanity_warnings
from ..values import in_memory_models
from ._compute import CleanCache, compute_group
from ._dist import Dist
from ._lock import RunLock
from ._progress import Progress
from .config import IN_MEMORY, EvalConfig, EvalError, resolve_config
from .grid import Group, groups_of
from .plan import Plan, prepare_plan
from .summary import EvalSummary, corruption_table


def run_evaluation(config: EvalConfig | Mapping, *, models: Mapping[str, Classifier] | None = None,
                   progress: str | bool = "auto", command: str | None = None) -> EvalSummary:
    """Evaluate every missing cell of ``config`` into ``<out>/results.sqlite``.

    ``models``: optional already-built classifiers by name, added to ``config.models``
    (spec ``"<in-memory>"``); they run on the evaluation's device, in eval mode, and get
    their device and train/eval mode back afterwards. Under torchrun (WORLD_SIZE > 1) cells
    are shared out over the ranks and rank 0 writes the store; every rank returns the summary.

    Returns an ``EvalSummary`` (cells computed, skipped and failed, images, timings, the
    per-corruption accuracy table). Wrong inputs raise one line (EvalError, a ValueError)
    before anything is written.
    """
    t_start = time.perf_counter()
    c = _resolve_with_prebuilt(config, models)
    dist, lock = Dist(), None
    homes = {m: _device_of(m) for m in (models or {}).values()}
    layouts = {m: _memory_format_of(m) for m in homes}
    try:
        device = rank_device(resolve_device(c.device), dist.local_rank, dist.world)
        for m in homes:  # a model built on the CPU meets batches on the GPU (device=auto)
            m.to(device)
        plan = prepare_plan(c, models, device)
        if c.channels_last:  # NHWC weights for the NHWC batches of _compute
            for m in plan.models.values():
                m.to(memory_format=torch.channels_last)
        groups = groups_of(c, plan.keys)
        todo, store = None, None
        if dist.is_main:
            lock = RunLock(Path(c.out))
            store, todo = _open_and_record(plan, groups, command)
        todo = dist.broadcast(todo)
        modes = {n: m.training for n, m in plan.models.items()}
        for m in plan.models.values():
            m.eval()
        t_compute = time.perf_counter()
        try:
            done, failed = _execute(plan, todo, store, dist, progress)
        except BaseException:
            if store is not None:
                store.close()
            raise
        finally:
            for n, m in plan.models.items():
                m.train(modes[n])
        summary: EvalSummary | None = None
        if dist.is_main:
            assert store is not None  # rank 0 opened it in _open_and_record
            n_img = sum(plan.sizes[g.source] * len(g.models) for g in todo)
            n_cells, n_todo = (sum(len(g.models) for g in gs) for gs in (groups, todo))
            now = time.perf_counter()
            wall, compute = now - t_start, now - t_compute
            summary = EvalSummary(
                run_dir=c.out, store=str(store.path), cells=n_cells, computed=done,
                skipped=n_cells - n_todo, failed=failed, images=n_img, wall_s=round(wall, 3),
                # stress + model + rows + store writes, without loading data/models
                compute_s=round(compute, 3),
                images_per_s=round(n_img / compute, 1) if compute > 0 else None,
                table=corruption_table(store, dataset=plan.keys[MAIN]),
                warnings=sanity_warnings(store.models(), store.accuracy_table()))
            store.close()
            for w in summary.warnings:
                if "clean accuracy" in w:  # mean/std warnings were printed before the work
                    print(f"warning: {w}", file=sys.stderr)
        summary = dist.broadcast(summary)
        assert summary is not None  # rank 0 made it; the broadcast hands it to every rank
        # Every rank has received everything before any rank tears its group down: a rank
        # that shuts gloo down while a peer still reads the last broadcast can abort at
        # exit ("terminate called without an active exception", seen once in CI).
        dist.barrier()
        return summary
    finally:
        for m, home in homes.items():
            if home is not None:
                m.to(home)
            if c.channels_last:
                m.to(memory_format=layouts[m])
        if lock is not None:
            lock.release()
        dist.close()


def _memory_format_of(model: torch.nn.Module) -> torch.memory_format:
    """channels_last when the model's first 4-D parameter is stored NHWC, else contiguous."""
    p = next((p for p in model.parameters() if p.ndim == 4), None)
    nhwc = (p is not None and not p.is_contiguous()
            and p.is_contiguous(memory_format=torch.channels_last))
    return torch.channels_last if nhwc else torch.contiguous_format


def _device_of(model: torch.nn.Module) -> torch.device | None:
    t: torch.Tensor | None = next(model.parameters(), None)
    t = next(model.buffers(), None) if t is None else t
    return None if t is None else t.device


def _resolve_with_prebuilt(config, models) -> ResolvedEvalConfig:
    in_memory_models(models)  # a bare nn.Module: one line naming fm.models.wrap
    if not models:
        return resolve_config(config)
    cfg = config if isinstance(config, EvalConfig) else from_dict(EvalConfig, dict(config))
    given = dict(cfg.models) if isinstance(cfg.models, Mapping) else {}
    given.update({n: IN_MEMORY for n in models})
    return resolve_config(dataclasses.replace(cfg, models=given))


def _open_and_record(plan: Plan, groups: list[Group], command: str | None):
    """Rank 0: check the store accepts these models, record them and the run, save the
    config, and return the groups with their missing models."""
    c = plan.config
    run_dir = Path(c.out)
    path = RunFolder(run_dir).store
    stale = check_known_models(plan, path)
    store = ResultsStore(path)
    try:
        for name in stale:
            store.drop_model(name)
        for name, rec in plan.records.items():
            store.register_model(name, **rec)
        versions = {**library_versions(), "device": str(plan.device),
                    "device_name": (torch.cuda.get_device_name(plan.device)
                                    if plan.device.type == "cuda" else "cpu")}
        store.start_run(command or " ".join(sys.argv), to_dict(c), versions)
        cfg_path = RunFolder(run_dir).eval_config
        try:
            save_resolved(c, cfg_path, versions)
        except OSError as e:  # e.g. a full disk on a rerun: name the file
            raise EvalError(f"cannot write {cfg_path}: {e.strerror or e}") from None
        todo = []
        for g in groups:
            missing = tuple(k.model for k in g.keys(c.seed) if not store.has_cell(k))
            if missing:
                todo.append(dataclasses.replace(g, models=missing))
    except BaseException:
        store.close()
        raise
    return store, todo


def check_known_models(plan: Plan, path: Path) -> list[str]:
    """Before anything is written: a model name already in the store must hold the same
    weights (a store from before issue 35 holds the legacy hash: taken as the same). A
    name whose earlier attempt left no finished cell is stale and returned, to be replaced;
    otherwise a mismatch is one line naming the tensors that differ."""
    if not path.exists():
        return []
    with ResultsStore(path, readonly=True) as old:
        known = {m["name"]: m for m in old.models()}
        finished = {n: old.has_done_cells(n) for n in known}
    stale = []
    for name, rec in plan.records.items():
        was = known.get(name)
        if was is None:
            continue
        # bf16 logits differ from fp32 ones: one precision per model name in a store.
        precision = [m.get("autocast") or "fp32" for m in (was["meta"], rec["meta"])]
        if precision[0] != precision[1]:
            if not finished[name]:
                stale.append(name)
                continue
            raise EvalError(f"model name {name!r} is in {path} evaluated with autocast "
                            f"{precision[0]}, and this run asks {precision[1]}; pass another "
                            "--name or another --out (cells of one name share one precision)")
        if was["weights_hash"] == rec["weights_hash"]:
            continue
        if was["weights_hash"] == legacy_weights_hash(plan.models[name]):
            rec["weights_hash"] = was["weights_hash"]  # the same weights, hashed the old way
        elif not finished[name]:
            stale.append(name)  # a failed first attempt does not block the fixed rerun
        else:
            what = differing_keys(was["meta"].get("tensor_hashes") or {},
                                  rec["meta"]["tensor_hashes"])
            hint = ("; its normalisation differs (the default follows the input size): pass "
                    "the stored --mean/--std" if what == "mean, std" else "")
            raise EvalError(f"model name {name!r} is already in {path} with other weights "
                            f"(differing: {what}){hint}; pass another --name or another --out")
    return stale


def _execute(plan: Plan, todo: list[Group], store: ResultsStore | None, dist: Dist,
             progress) -> tuple[int, list[dict]]:
    """Compute ``todo`` in rounds of one group per rank; rank 0 writes after each round."""
    n_img = sum(plan.sizes[g.source] * len(g.models) for g in todo)
    bar = Progress(sum(len(g.models) for g in todo), n_img, progress if dist.is_main else "off")
    cache = CleanCache(plan.device)
    done, failed = 0, []
    try:
        for r0 in range(0, len(todo), dist.world):
            i = r0 + dist.rank
            mine = None
            if i < len(todo):
                bar.start_cell(todo[i].label)
                mine = (i, compute_group(plan, todo[i], cache, bar))
            gathered = dist.gather(mine)
            if not dist.is_main:
                continue
            assert gathered is not None and store is not None  # rank 0 gathers and writes
            for rank, item in enumerate(gathered):
                if item is None:
                    continue
                i, (outcomes, stats) = item
                g = todo[i]
                notes = []
                for key, out in zip(g.keys(plan.config.seed), outcomes, strict=True):
                    if isinstance(out, str):
                        store.mark_failed(key, out)
                        failed.append({"cell": dataclasses.asdict(key), "error": out})
                        notes.append(f"{key.model}: FAILED ({out})")
                    else:
                        store.write_cell(key, out, started=stats["started"],
                                         images_per_s=stats["ips"][key.model],
                                         attack=stats["attack"].get(key.model))
                        done += 1
                if rank != 0:  # another rank's images count when they arrive here
                    bar.advance_images(stats["n"] * len(g.models))
                bar.end_cell(g.label, len(g.models), "  " + "; ".join(notes) if notes else "")
    finally:
        bar.close()
    return done, failed
