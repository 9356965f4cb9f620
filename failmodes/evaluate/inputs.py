"""The inputs of an evaluation: its data sets (subset applied, dataset keys) and models.

>>> ds, key = load_eval_dataset(EvalConfig(models=["small_cnn"], subset=500))
>>> key
'synthetic:test@500'
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import torch

from ..data import DataError, Dataset, load_cifar10c, load_dataset
from ..models import Classifier, ModelError, create_model, load_checkpoint
from ..store import OFFICIAL_NAME, VAL_SPLIT, dataset_key
from .config import EvalConfig, EvalError, _is_checkpoint

# Subsets are drawn with this fixed seed, not ``EvalConfig.seed``: runs with different
# stressor seeds then stay paired on the very same images.
SUBSET_SEED = 42


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


def official_dataset(config: EvalConfig, corruption: str, severity: float, classes: list[str]):
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


def check_classes(name: str, model: Classifier, ds: Dataset, data: str) -> None:
    if model.num_classes != len(ds.classes):
        raise EvalError(f"model {name!r} has {model.num_classes} classes but {data} has "
                        f"{len(ds.classes)} ({', '.join(ds.classes[:5])}, ...); evaluate it on "
                        "the data it was trained for")
    generic = all(c == f"class_{i}" for i, c in enumerate(model.class_names))
    if not generic and model.class_names != list(ds.classes):
        raise EvalError(f"model {name!r} classes {model.class_names} do not match {data} "
                        f"classes {list(ds.classes)} (same order needed)")


def official_key(c: EvalConfig) -> tuple[str, int]:
    """The official CIFAR-10-C cells' dataset key and images per cell; checks the folder."""
    root = Path(c.cifar10c)
    if not (root / "labels.npy").is_file():
        raise EvalError(f"{root}/labels.npy not found; --cifar10c takes the published "
                        "CIFAR-10-C folder (<corruption>.npy + labels.npy)")
    missing = [n for n in c.stressors if not (root / f"{n}.npy").is_file()]
    if missing:
        raise EvalError(f"{root} has no {missing[0]}.npy ({len(missing)} missing); "
                        "limit --stressors to the corruptions the folder holds")
    n_full = len(np.load(root / "labels.npy", mmap_mode="r")) // 5
    n_used = min(c.subset, n_full) if c.subset else n_full
    return dataset_key(OFFICIAL_NAME, c.split, n_used, n_full), n_used
