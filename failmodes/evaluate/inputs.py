"""The inputs of an evaluation: its data sets (subset applied, dataset keys) and models.

>>> ds, key = load_eval_dataset(resolve_config(EvalConfig(models=["small_cnn"], subset=500)))
>>> key
'synthetic:test@500'
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import torch

from ..constants import SUBSET_SEED
from ..data import CorruptedSpec, DataError, Dataset, find_data_spec, load_corrupted, load_dataset
from ..models import Classifier, ModelError, load_model
from ..store import FINISH_SEP, VAL_SPLIT, ResolvedEvalConfig, dataset_key, official_name
from .config import EvalError


def load_eval_dataset(config: ResolvedEvalConfig, split: str | None = None) -> tuple[Dataset, str]:
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
    name = full.name if config.finish == "none" else f"{full.name}{FINISH_SEP}{config.finish}"
    return dataclasses.replace(ds), dataset_key(name, split, len(ds), len(full))


@functools.lru_cache(maxsize=4)
def _load_full(spec: str, split: str, image_size: int | None) -> Dataset:
    # Kept in memory: the grid, open_run and every analysis ask for the same data set, and
    # the synthetic set is regenerated (~1 s per 2000 images) on each load.
    return load_dataset(spec, split, image_size=image_size)


def official_dataset(config: ResolvedEvalConfig, corruption: str, severity: float, classes: list[str]):
    """One cell's images of the released corrupted set ``config.official`` and its key."""
    if config.official is None:
        raise EvalError("official_dataset: the config names no released set (--official)")
    kind = find_data_spec(config.official).name
    try:
        ds = load_corrupted(config.official, corruption, int(severity),
                            image_size=config.image_size, subset=config.subset,
                            subset_seed=SUBSET_SEED)
    except DataError as e:
        raise EvalError(str(e)) from None
    if ds.classes != classes:
        raise EvalError(f"{config.official}: its classes ({', '.join(ds.classes[:3])}, ...) "
                        f"differ from {config.data}'s ({', '.join(classes[:3])}, ...)")
    return ds, dataset_key(official_name(kind), config.split, len(ds),
                           ds.full_size or len(ds))


def build_model(spec, class_names: list[str] | None = None, *, seed: int = 0,
                device: torch.device | str = "cpu",
                data_size: int | None = None) -> tuple[Classifier, dict]:
    """Build one model from a spec (a model file, a registry name or ``{"arch": ...,
    "weights": ...}``: see ``failmodes.models.load_model``), in eval mode on ``device``;
    returns (model, meta). Weights no file provides are initialised under ``seed``, so the
    same spec always gives the same weights."""
    try:
        model = load_model(spec, data_classes=class_names, data_size=data_size, seed=seed)
    except ModelError as e:
        raise EvalError(str(e)) from None
    meta = {"source": "checkpoint" if model.source.get("format") == "failmodes checkpoint"
            else "model", "arch_kwargs": model.arch_kwargs, "init_seed": seed,
            "spec": model.source.get("spec", spec), "provenance": model.source}
    if meta["source"] == "checkpoint":
        meta["checkpoint"] = spec
        # What it trained on (train/val split, seed), so calibration fits T on unseen images.
        meta["train_data"] = model.source.get("train_data")
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


def official_key(c: ResolvedEvalConfig) -> tuple[str, int]:
    """The official cells' dataset key and images per cell; checks that the released set
    holds every requested corruption at severities 1..5 before any work."""
    if c.official is None:
        raise EvalError("official_key needs a resolved config that names --official")
    kind = find_data_spec(c.official)
    if not isinstance(kind, CorruptedSpec):
        raise EvalError(f"--official {c.official!r} is not a released corrupted set")
    root = kind.argument(c.official)
    try:
        missing, n_full = kind.survey(root, c.stressors, c.severities)
    except DataError as e:
        raise EvalError(str(e)) from None
    if missing:
        raise EvalError(f"{Path(root)} has no {missing[0]} ({len(missing)} of the requested "
                        "corruptions missing); limit --stressors to the corruptions it holds")
    n_used = min(c.subset, n_full) if c.subset else n_full
    return dataset_key(official_name(kind.name), c.split, n_used, n_full), n_used
