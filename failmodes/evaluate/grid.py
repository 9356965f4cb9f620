"""The evaluation grid: models × datasets × (stressor, severity) cells into the results store.

A cell is one (model, dataset, stressor, severity-or-value, seed) and the unit of work and
of resumption: ``run_evaluation`` computes only the cells missing from the store and writes
each in one transaction. The stressed images of a (dataset, stressor, severity) are made
once per batch and fed to every model that still needs that cell, and the stressor's
randomness depends only on (stressor, severity, seed, dataset index): two models, two batch
sizes or two ranks see the very same corrupted images.

>>> cfg = EvalConfig(models={"cnn": "runs/cnn/model.pt"}, data="synthetic", subset=500,
...                  stressors=["gaussian_noise"], severities="1:5:1", out="runs/cnn-eval")
>>> summary = run_evaluation(cfg)          # doctest: +SKIP
>>> summary["computed"], summary["skipped"]  # doctest: +SKIP
(6, 0)
"""
from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from .._device import resolve_device
from ..errors import FailmodesError
from ..config import ConfigError, from_dict, save_resolved, to_dict
from ..data import DataError, Dataset, load_cifar10c, load_dataset
from ..models import Classifier, ModelError, create_model, library_versions, load_checkpoint
from ..models import weights_hash
from ..stressors import StressorError, get_stressor, suite as stressor_suite
from ._dist import Dist
from ._progress import Progress
from ._values import parse_sweep, parse_values
from .store import CellKey, ResultsStore, per_image_rows

STORE_NAME = "results.sqlite"
CONFIG_NAME = "eval_config.json"
LOCK_NAME = "results.sqlite.lock"
CLEAN = "clean"
OFFICIAL_NAME = "cifar10c-official"
VAL_SPLIT = "train-val"
# Subsets are drawn with this fixed seed, not ``EvalConfig.seed``: runs with different
# stressor seeds then stay paired on the very same images.
SUBSET_SEED = 42
# Clean float batches are kept for reuse across cells up to this many bytes (on device).
CLEAN_CACHE_BYTES = 512 * 2 ** 20
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
IN_MEMORY = "<in-memory>"  # the spec of a model handed to run_evaluation as an object


class EvalError(ValueError, FailmodesError):
    """The evaluation cannot start (bad model, data, stressor or value); one line."""


@dataclass
class EvalConfig:
    """Everything one ``failmodes evaluate`` call needs; saved resolved beside the store.

    models: ``{name: spec}`` (or a list of specs, named after their file stem / registry
        name). A spec is a checkpoint path, a registry name (weights initialised from
        ``seed``, for smoke tests and benchmarks) or ``{"arch": NAME, **kwargs}``.
    data/split/subset: dataset spec for ``failmodes.data.load_dataset``, its split, and a
        class-stratified subset size (None = all).
    suite/stressors: a suite name (cifar10-c, cifar10-c-extra, all, sweeps) and/or
        stressor names; the clean cell is always included.
    severities: corruption severities, a list or ``"1,2,3"`` / ``"0:5:0.25"``; 0 is the
        identity, i.e. the clean cell, and is not stored again per corruption.
    sweeps: ``["rotation=-90:90:15", ...]``, values in the stressor's natural unit (for a
        corruption, extra severities of that corruption only).
    include_val: also evaluate the clean ``train-val`` split (temperature scaling), at most
        ``val_subset`` images.
    cifar10c: the official CIFAR-10-C ``.npy`` folder; its cells go under the dataset
        ``cifar10c-official:<split>``, no stressor applied.
    """

    models: dict[str, Any] | list[Any] = field(default_factory=dict)
    data: str = "synthetic"
    split: str = "test"
    subset: int | None = None
    suite: str | None = None
    stressors: list[str] | None = None
    severities: list[float] | str = field(default_factory=lambda: [1.0, 2.0, 3.0, 4.0, 5.0])
    sweeps: list[str] = field(default_factory=list)
    seed: int = 0
    batch_size: int = 256
    device: str = "auto"
    include_val: bool = False
    val_subset: int | None = 5000
    cifar10c: str | None = None
    image_size: int | None = None
    store_logits: bool = True
    out: str = "runs/eval"


# ----------------------------------------------------------------------------- resolving
def resolve_config(config: EvalConfig | Mapping) -> EvalConfig:
    """A copy with every shorthand made explicit: models as ``{name: spec}``, severities
    and stressors as lists (the suite expanded), sweeps as ``name=v1,v2,...``, paths
    absolute. Raises EvalError on unknown stressors, out-of-range values, bad numbers."""
    if not isinstance(config, EvalConfig):
        try:
            config = from_dict(EvalConfig, dict(config))
        except ConfigError as e:
            raise EvalError(str(e)) from None
    c = dataclasses.replace(config)
    c.models = _name_models(c.models)
    try:
        sev = sorted(set(parse_values(c.severities)))
    except ValueError as e:  # ours or the stressors package's parser error
        raise EvalError(f"--severities: {e}") from None
    names = list(stressor_suite(c.suite)) if c.suite else []
    for n in c.stressors or []:
        if n not in names:
            names.append(n)
    sweeps, corruptions = [], []
    for n in names:
        s = _stressor(n)
        (corruptions if s.is_corruption else sweeps).append(n)
    sweep_values: dict[str, list[float]] = {}
    for text in c.sweeps:
        try:
            n, vals = parse_sweep(text)
        except ValueError as e:
            raise EvalError(f"--sweep: {e}") from None
        _stressor(n)  # a corruption may be swept too: its values are extra severities
        sweep_values[n] = sorted(set(sweep_values.get(n, []) + vals))
    for n in sweeps:
        if n not in sweep_values:
            default = getattr(_stressor(n), "default_values", None)
            if not default:
                raise EvalError(f"sweep stressor {n} needs values: --sweep {n}=START:STOP:STEP")
            sweep_values[n] = [float(v) for v in default]
    for n in corruptions:
        for s in sev:
            _check_value(n, s)
    for n, vals in sweep_values.items():
        for v in vals:
            _check_value(n, v)
    c.severities = [float(s) for s in sev]
    c.stressors = corruptions
    c.sweeps = [f"{n}={','.join(_fmt(v) for v in vals)}" for n, vals in sweep_values.items()]
    c.data = _absolute_data_spec(c.data)
    if c.cifar10c:
        c.cifar10c = str(Path(c.cifar10c).expanduser().resolve())
    c.out = str(Path(c.out).expanduser().resolve())
    if c.batch_size < 1:
        raise EvalError(f"--batch-size must be positive, got {c.batch_size}")
    if c.subset is not None and c.subset < 1:
        raise EvalError(f"--subset must be positive, got {c.subset}")
    resolve_device(c.device)
    return c


def _name_models(models) -> dict[str, Any]:
    if isinstance(models, Mapping):
        out = {str(k): v for k, v in models.items()}
    else:
        out = {}
        for spec in models:
            base = _default_name(spec)
            name, k = base, 2
            while name in out:
                name, k = f"{base}-{k}", k + 1
            out[name] = spec
    if not out:
        raise EvalError("no model given; pass --model CKPT|NAME")
    for name, spec in out.items():
        if spec == IN_MEMORY:
            continue
        if isinstance(spec, str):
            out[name] = _absolute_model_spec(spec)
        elif not (isinstance(spec, Mapping) and isinstance(spec.get("arch"), str)):
            raise EvalError(f"model {name!r}: spec must be a checkpoint path, a registry name "
                            f"or {{'arch': NAME, ...}}, got {spec!r}")
    return out


def _default_name(spec) -> str:
    if isinstance(spec, Mapping):
        return str(spec.get("arch", "model"))
    p = Path(str(spec))
    if _is_checkpoint(str(spec)):
        # runs/r18/best.pt -> r18: a generic file stem says less than its folder.
        return p.parent.name if p.stem in ("model", "best", "last", "checkpoint") and p.parent.name else p.stem
    return str(spec)


def _is_checkpoint(spec: str) -> bool:
    return spec.endswith(CHECKPOINT_SUFFIXES) or os.path.isfile(spec)


def _absolute_model_spec(spec: str) -> str:
    return str(Path(spec).expanduser().resolve()) if _is_checkpoint(spec) else spec


def _absolute_data_spec(spec: str) -> str:
    kind, sep, arg = spec.partition(":")
    if sep and kind in ("imagefolder", "cifar10", "cifar10c") and arg:
        return f"{kind}:{Path(arg).expanduser().resolve()}"
    if not sep and kind not in ("synthetic", "cifar10") and os.path.isdir(spec):
        return str(Path(spec).expanduser().resolve())
    return spec


def _stressor(name: str):
    try:
        return get_stressor(name)
    except StressorError as e:
        raise EvalError(str(e)) from None


def _check_value(name: str, value: float) -> None:
    try:
        _stressor(name)._check_severity(value)
    except StressorError as e:
        raise EvalError(str(e)) from None


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e6 else repr(v)


# ----------------------------------------------------------------------------- data & models
def dataset_key(name: str, split: str, n_used: int, n_full: int) -> str:
    """The store's dataset string: ``name:split``, plus ``@n`` when a subset is used."""
    return f"{name}:{split}" + (f"@{n_used}" if n_used < n_full else "")


def load_eval_dataset(config: EvalConfig, split: str | None = None) -> tuple[Dataset, str]:
    """The evaluated data (subset applied, original indices kept) and its store key.

    ``split=None`` is the config's split; ``"train-val"`` the validation part capped at
    ``config.val_subset``."""
    split = split or config.split
    n_max = config.val_subset if split == VAL_SPLIT and split != config.split else config.subset
    try:
        full = _load_full(config.data, split, config.image_size)
        ds = full.subset(n_max, seed=SUBSET_SEED)
    except DataError as e:
        raise EvalError(str(e)) from None
    return dataclasses.replace(ds), dataset_key(full.name, split, len(ds), len(full))


@functools.lru_cache(maxsize=4)
def _load_full(spec: str, split: str, image_size: int | None) -> Dataset:
    # Kept in memory: the grid, open_run and every analysis ask for the same data set, and
    # the synthetic set is regenerated (~1 s per 2000 images) on each load.
    return load_dataset(spec, split, image_size=image_size)


def _official(config: EvalConfig, corruption: str, severity: float, classes: list[str]):
    try:
        full = load_cifar10c(config.cifar10c, corruption, int(severity))
        ds = full.subset(config.subset, seed=SUBSET_SEED)
    except DataError as e:
        raise EvalError(str(e)) from None
    if ds.classes != classes:
        raise EvalError(f"{config.cifar10c}: CIFAR-10-C classes {ds.classes} differ from the "
                        f"model's {classes}")
    return ds, dataset_key(OFFICIAL_NAME, config.split, len(ds), len(full))


def build_model(spec, class_names: list[str] | None = None, *, seed: int = 0,
                device: torch.device | str = "cpu") -> tuple[Classifier, dict]:
    """Build one model from a spec (checkpoint path, registry name or ``{"arch": ...}``),
    in eval mode on ``device``; returns (model, meta). Registry models are initialised
    under ``seed`` so the same spec always gives the same weights."""
    if isinstance(spec, str) and _is_checkpoint(spec):
        try:
            model, payload = load_checkpoint(spec)
        except ModelError as e:
            raise EvalError(str(e)) from None
        # What it trained on (train/val split, seed), so calibration fits T on unseen images.
        meta = {"source": "checkpoint", "checkpoint": spec, "arch_kwargs": model.arch_kwargs,
                "train_data": (payload.get("extra") or {}).get("data")}
    else:
        arch, kwargs = (spec, {}) if isinstance(spec, str) else (
            spec["arch"], {k: v for k, v in spec.items() if k != "arch"})
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = create_model(arch, class_names=class_names, **kwargs)
        except ModelError as e:
            raise EvalError(str(e)) from None
        meta = {"source": "registry", "arch_kwargs": model.arch_kwargs, "init_seed": seed}
    return model.to(device).eval(), meta


def _check_classes(name: str, model: Classifier, ds: Dataset, data: str) -> None:
    if model.num_classes != len(ds.classes):
        raise EvalError(f"model {name!r} has {model.num_classes} classes but {data} has "
                        f"{len(ds.classes)} ({', '.join(ds.classes[:5])}, ...); evaluate it on "
                        "the data it was trained for")
    generic = all(c == f"class_{i}" for i, c in enumerate(model.class_names))
    if not generic and model.class_names != list(ds.classes):
        raise EvalError(f"model {name!r} classes {model.class_names} do not match {data} "
                        f"classes {list(ds.classes)} (same order needed)")


# ----------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Group:
    """The cells that share one stressed image set: same dataset, stressor and severity."""

    source: str              # "main" | "val" | "official"
    dataset: str             # store key, e.g. "cifar10:test@2000"
    stressor: str
    severity: float
    models: tuple[str, ...]

    def keys(self, seed: int) -> list[CellKey]:
        return [CellKey(m, self.dataset, self.stressor, self.severity, seed) for m in self.models]

    @property
    def label(self) -> str:
        return f"{self.stressor} {_fmt(self.severity)} on {self.dataset}"


def _groups(config: EvalConfig, keys: dict[str, str]) -> list[Group]:
    """Every group of a resolved config, clean first; ``keys`` maps source -> dataset key."""
    models = tuple(config.models)
    out = [Group("main", keys["main"], CLEAN, 0.0, models)]
    for n in config.stressors:
        out += [Group("main", keys["main"], n, s, models) for s in config.severities if s != 0]
    for text in config.sweeps:
        n, vals = parse_sweep(text)
        out += [g for g in (Group("main", keys["main"], n, v, models) for v in vals)
                if g not in out]
    if "val" in keys:
        out.append(Group("val", keys["val"], CLEAN, 0.0, models))
    if "official" in keys:
        for n in config.stressors:
            out += [Group("official", keys["official"], n, s, models)
                    for s in config.severities if s in (1, 2, 3, 4, 5)]
    return out


def build_cells(config: EvalConfig | Mapping) -> list[CellKey]:
    """Every cell key of the grid (clean first), without building models or writing."""
    c = resolve_config(config)
    plan_keys = _dataset_keys(c)
    return [k for g in _groups(c, plan_keys) for k in g.keys(c.seed)]


def _dataset_keys(c: EvalConfig) -> dict[str, str]:
    keys = {"main": load_eval_dataset(c)[1]}
    if c.include_val:
        keys["val"] = load_eval_dataset(c, VAL_SPLIT)[1]
    if c.cifar10c:
        keys["official"] = _official_key(c)[0]
    return keys


def _official_key(c: EvalConfig) -> tuple[str, int]:
    root = Path(c.cifar10c)
    if not (root / "labels.npy").is_file():
        raise EvalError(f"{root}/labels.npy not found; --cifar10c takes the published "
                        "CIFAR-10-C folder (<corruption>.npy + labels.npy)")
    missing = [n for n in c.stressors if not (root / f"{n}.npy").is_file()]
    if missing:
        raise EvalError(f"{root} has no {missing[0]}.npy ({len(missing)} missing); "
                        "limit --stressors to the corruptions the folder holds")
    import numpy as np
    n_full = len(np.load(root / "labels.npy", mmap_mode="r")) // 5
    n_used = min(c.subset, n_full) if c.subset else n_full
    return dataset_key(OFFICIAL_NAME, c.split, n_used, n_full), n_used


@dataclass
class _Plan:
    config: EvalConfig
    device: torch.device
    data: dict[str, Dataset]
    keys: dict[str, str]
    sizes: dict[str, int]          # source -> images per cell
    models: dict[str, Classifier]
    records: dict[str, dict]


def _prepare(c: EvalConfig, prebuilt: Mapping[str, Classifier] | None,
             device: torch.device) -> _Plan:
    """Load data and models and check them against each other; writes nothing."""
    main, main_key = load_eval_dataset(c)
    data, keys = {"main": main}, {"main": main_key}
    if c.include_val:
        data["val"], keys["val"] = load_eval_dataset(c, VAL_SPLIT)
        if data["val"].classes != main.classes:
            raise EvalError(f"{c.data}: train-val classes differ from {c.split} classes")
    sizes = {k: len(v) for k, v in data.items()}
    if c.cifar10c:
        keys["official"], sizes["official"] = _official_key(c)
    models, records = {}, {}
    for name, spec in c.models.items():
        if spec == IN_MEMORY:
            if not prebuilt or name not in prebuilt:
                raise EvalError(f"model {name!r} was evaluated in memory and cannot be rebuilt; "
                                "pass it again with run_evaluation(..., models={name: model})")
            model, meta, spec_s = prebuilt[name], {"source": "in-memory"}, IN_MEMORY
        else:
            model, meta = build_model(spec, main.classes, seed=c.seed, device=device)
            spec_s = spec if isinstance(spec, str) else spec["arch"]
        _check_classes(name, model, main, c.data)
        models[name] = model
        records[name] = {"spec": spec_s, "arch": model.arch, "weights_hash": weights_hash(model),
                         "class_names": list(model.class_names), "meta": meta}
    return _Plan(c, device, data, keys, sizes, models, records)


# ----------------------------------------------------------------------------- running
def run_evaluation(config: EvalConfig | Mapping, *, models: Mapping[str, Classifier] | None = None,
                   progress: str | bool = "auto", command: str | None = None) -> dict:
    """Evaluate every missing cell of ``config`` into ``<out>/results.sqlite``.

    ``models``: optional already-built classifiers by name, added to ``config.models``
    (spec ``"<in-memory>"``); they run on the device they are on, in eval mode, and get
    their train/eval mode back afterwards. Under torchrun (WORLD_SIZE > 1) cells are shared
    out over the ranks and rank 0 writes the store; every rank returns the summary.

    Returns ``{"run_dir", "store", "cells", "computed", "skipped", "failed": [{cell, error}],
    "images", "wall_s", "compute_s", "images_per_s", "table"}``: images count once per
    model, images/s is over ``compute_s`` (after data and models are loaded), ``table`` is
    the per-corruption accuracy. Wrong inputs raise one line (EvalError, a ValueError)
    before anything is written.
    """
    t_start = time.perf_counter()
    c = _resolve_with_prebuilt(config, models)
    dist, lock = Dist(), None
    try:
        device = resolve_device(c.device)
        if device.type == "cuda" and dist.world > 1:
            device = torch.device("cuda", dist.local_rank)
        plan = _prepare(c, models, device)
        groups = _groups(c, plan.keys)
        todo, store = None, None
        if dist.is_main:
            lock = _RunLock(Path(c.out))
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
        summary = None
        if dist.is_main:
            from ..analysis.metrics import corruption_table
            n_img = sum(plan.sizes[g.source] * len(g.models) for g in todo)
            n_cells, n_todo = (sum(len(g.models) for g in gs) for gs in (groups, todo))
            now = time.perf_counter()
            wall, compute = now - t_start, now - t_compute
            summary = {"run_dir": c.out, "store": str(store.path), "cells": n_cells,
                       "computed": done, "skipped": n_cells - n_todo, "failed": failed,
                       "images": n_img, "wall_s": round(wall, 3),
                       # stress + model + rows + store writes, without loading data/models
                       "compute_s": round(compute, 3),
                       "images_per_s": round(n_img / compute, 1) if compute > 0 else None,
                       "table": corruption_table(store, dataset=plan.keys["main"])}
            store.close()
        return dist.broadcast(summary)
    finally:
        if lock is not None:
            lock.release()
        dist.close()


def _resolve_with_prebuilt(config, models) -> EvalConfig:
    if not models:
        return resolve_config(config)
    cfg = config if isinstance(config, EvalConfig) else from_dict(EvalConfig, dict(config))
    given = dict(cfg.models) if isinstance(cfg.models, Mapping) else {}
    given.update({n: IN_MEMORY for n in models})
    return resolve_config(dataclasses.replace(cfg, models=given))


class _RunLock:
    """One writer per run folder: two evaluations into one --out would compute the same
    cells twice. The OS drops a flock when its holder dies, SIGKILL included."""

    def __init__(self, run_dir: Path):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.file = open(run_dir / LOCK_NAME, "a+")
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform
            return
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise EvalError(f"another evaluation ({holder}) is writing to {run_dir}; wait for "
                            "it to finish or pass another --out") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"pid {os.getpid()}")
        self.file.flush()

    def release(self) -> None:
        self.file.close()


def _open_and_record(plan: _Plan, groups: list[Group], command: str | None):
    """Rank 0: check the store accepts these models, record them and the run, save the
    config, and return the groups with their missing models."""
    c = plan.config
    run_dir = Path(c.out)
    path = run_dir / STORE_NAME
    if path.exists():  # name clashes fail before anything is written
        with ResultsStore(path, readonly=True) as old:
            known = {m["name"]: m["weights_hash"] for m in old.models()}
        for name, rec in plan.records.items():
            if name in known and known[name] != rec["weights_hash"]:
                raise EvalError(f"model name {name!r} is already in {path} with other weights; "
                                "pass another --name or another --out")
    store = ResultsStore(path)
    try:
        for name, rec in plan.records.items():
            store.register_model(name, **rec)
        versions = {**library_versions(), "device": str(plan.device),
                    "device_name": (torch.cuda.get_device_name(plan.device)
                                    if plan.device.type == "cuda" else "cpu")}
        store.start_run(command or " ".join(sys.argv), to_dict(c), versions)
        save_resolved(c, run_dir / CONFIG_NAME, versions)
        todo = []
        for g in groups:
            missing = tuple(k.model for k in g.keys(c.seed) if not store.has_cell(k))
            if missing:
                todo.append(dataclasses.replace(g, models=missing))
    except BaseException:
        store.close()
        raise
    return store, todo


def _group_dataset(plan: _Plan, g: Group) -> tuple[Dataset, str]:
    if g.source == "official":
        return _official(plan.config, g.stressor, g.severity, plan.data["main"].classes)
    return plan.data[g.source], plan.keys[g.source]


def _execute(plan: _Plan, todo: list[Group], store: ResultsStore | None, dist: Dist,
             progress) -> tuple[int, list[dict]]:
    """Compute ``todo`` in rounds of one group per rank; rank 0 writes after each round."""
    n_img = sum(plan.sizes[g.source] * len(g.models) for g in todo)
    bar = Progress(sum(len(g.models) for g in todo), n_img, progress if dist.is_main else "off")
    cache = _CleanCache(plan.device)
    done, failed = 0, []
    try:
        for r0 in range(0, len(todo), dist.world):
            i = r0 + dist.rank
            mine = None
            if i < len(todo):
                bar.start_cell(todo[i].label)
                mine = (i, _compute_group(plan, todo[i], cache, bar))
            gathered = dist.gather(mine)
            if not dist.is_main:
                continue
            for rank, item in enumerate(gathered):
                if item is None:
                    continue
                i, (outcomes, stats) = item
                g = todo[i]
                notes = []
                for key, out in zip(g.keys(plan.config.seed), outcomes):
                    if isinstance(out, str):
                        store.mark_failed(key, out)
                        failed.append({"cell": dataclasses.asdict(key), "error": out})
                        notes.append(f"{key.model}: FAILED ({out})")
                    else:
                        store.write_cell(key, out, started=stats["started"],
                                         images_per_s=stats["ips"][key.model])
                        done += 1
                if rank != 0:  # another rank's images count when they arrive here
                    bar.advance_images(stats["n"] * len(g.models))
                bar.end_cell(g.label, len(g.models), "  " + "; ".join(notes) if notes else "")
    finally:
        bar.close()
    return done, failed


class _CleanCache:
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


def _compute_group(plan: _Plan, g: Group, cache: _CleanCache, bar: Progress):
    """Stress each batch once, run every model of ``g``; returns (per-model rows dict or
    failure reason string, stats)."""
    c = plan.config
    ds, key = _group_dataset(plan, g)
    stressor = get_stressor(g.stressor) if g.stressor != CLEAN and g.source != "official" else None
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    logits: dict[str, list[torch.Tensor]] = {m: [] for m in g.models}
    t_stress, t_model = 0.0, dict.fromkeys(g.models, 0.0)
    n = len(ds)
    with torch.inference_mode():
        for start in range(0, n, c.batch_size):
            stop = min(start + c.batch_size, n)
            if g.source == "official":
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
