"""The inputs of an evaluation: its data sets (subset applied, dataset keys) and models.

>>> from failmodes.evaluate.config import EvalConfig, resolve_config
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
from ..data.folders import image_files, split_root
from ..data.imagenet import IMAGENET_SIZE
from ..models import Classifier, ModelError, load_model
from ..store import (
    FINISH_SEP,
    SIZE_TAG,
    VAL_SPLIT,
    ResolvedEvalConfig,
    dataset_key,
    official_name,
    sized_name,
)
from ..stressors.registry import CIFAR_TABLE_MAX_SIDE, TABLE_SOURCES, TINY_TABLE_MAX_SIDE
from .config import EvalError


def load_eval_dataset(config: ResolvedEvalConfig, split: str | None = None) -> tuple[Dataset, str]:
    """The evaluated data (subset applied, original indices kept) and its store key.

    ``split=None`` is the config's split; ``"train-val"`` the validation part capped at
    ``config.val_subset``."""
    split = split or config.split
    n_max = config.val_subset if split == VAL_SPLIT and split != config.split else config.subset
    try:
        full = _load_full(config.data, split, config.image_size, n_max)  # a folder: n decoded
        ds = full.subset(n_max, seed=SUBSET_SEED)
    except DataError as e:
        raise EvalError(str(e)) from None
    name = full.name
    side = config.image_size
    if side is not None and full.image_size == (side, side) and native_side(
            config.data, split) != side:
        name = sized_name(name, side)  # other pixels than the data's own size: other cells
    if config.finish != "none":
        name = f"{name}{FINISH_SEP}{config.finish}"
    return dataclasses.replace(ds), dataset_key(name, split, len(ds), full.full_size or len(full))


@functools.lru_cache(maxsize=16)
def native_side(spec: str, split: str) -> int | None:
    """The side of the data's images as stored (None when they differ in size or are not
    square): ImageNet's is its 224-px crop; a folder's is read from the headers of a few
    files (one per class folder, up to 8), without decoding; other sets are loaded as is."""
    kind = find_data_spec(spec)
    if kind.name == "imagenet":
        return IMAGENET_SIZE
    root = Path(str(kind.argument(spec))).expanduser() if kind.argument(spec) else None
    if root is not None and root.is_dir():
        from PIL import Image
        try:
            folder = split_root(root, split.partition("-")[0])
            sides = set()
            for d in sorted(p for p in folder.iterdir() if p.is_dir())[:8]:
                files = image_files(d)
                if files:
                    with Image.open(files[0].path) as im:
                        sides.add(im.size)
        except (DataError, OSError):
            return None
        return next(iter(sides))[0] if len(sides) == 1 and len(set(next(iter(sides)))) == 1 \
            else None
    try:
        h, w = _load_full(spec, split, None).image_size
    except DataError:
        return None
    return h if h == w else None


def size_note(config: ResolvedEvalConfig, image_side: int, split: str | None = None) -> str | None:
    """One line when ``--image-size`` moves the corruption parameters to another published
    table than the data's own size would use (32-px CIFAR-10-C's -> 224-px ImageNet-C's)."""
    own = native_side(config.data, split or config.split)
    if config.image_size is None or own is None or _table(own) == _table(image_side):
        return None
    return (f"--image-size {image_side}: the corruptions take {TABLE_SOURCES[_table(image_side)]}'s "
            f"severity parameters (for {image_side}-px images), not the "
            f"{TABLE_SOURCES[_table(own)]} ones of the data's own {own}-px images; the cells "
            f"are stored apart, under {SIZE_TAG.format(image_side)}")


def _table(side: int) -> str:
    # the table a corruption with all three uses at this side (stressors/registry.py)
    if side < CIFAR_TABLE_MAX_SIDE:
        return "cifar"
    return "tinyimagenet" if side < TINY_TABLE_MAX_SIDE else "imagenet"


@functools.lru_cache(maxsize=4)
def _load_full(spec: str, split: str, image_size: int | None,
               subset: int | None = None) -> Dataset:
    # Kept in memory: the grid, open_run and every analysis ask for the same data set, and
    # the synthetic set is regenerated (~1 s per 2000 images) on each load. With ``subset``
    # the subset itself (``full_size`` the split's size): a folder decodes only those images.
    return load_dataset(spec, split, image_size=image_size, subset=subset)


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
