"""Rebuilding the images a model saw in a cell, pixel for pixel.

A stressor's randomness depends only on (stressor, severity, seed, dataset index), so the
images of any cell are the dataset's rows at those indices pushed through the cell's
stressor again (and its finish, ``+jpeg85`` in the dataset name); official cells read the
released corrupted set's rows instead.

>>> x = cell_images("runs/x", store.cells(stressor="fog")[0], [3, 17])   # doctest: +SKIP
>>> x.shape                                                               # doctest: +SKIP
torch.Size([2, 3, 32, 32])
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..constants import SUBSET_SEED
from .keys import CLEAN, OFFICIAL, parse_dataset_key
from .layout import RUN_CONFIG_NAMES, RunFolder
from .results import Cell
from .run_config import read_run_config

if TYPE_CHECKING:  # annotations only; torch loads with the data
    import torch


def stress_like_cell(x: torch.Tensor, cell: Cell, indices, *, model=None,
                     labels=None) -> torch.Tensor:
    """``x`` (float N×3×H×W in [0, 1], the clean images at dataset ``indices``) as the
    cell saw them: its stressor at its severity and seed; clean and official cells as is.
    An attack's cell needs the cell's ``model`` and the images' ``labels`` too."""
    key = parse_dataset_key(cell.dataset)
    if cell.stressor == CLEAN or key.role == OFFICIAL:
        return x
    import torch

    from ..stressors import StressorError, get_stressor
    from ..stressors.finish import finish_images
    st = get_stressor(cell.stressor)
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
    if not st.needs_model:
        return finish_images(st(x, cell.severity, seed=cell.seed, indices=idx), key.finish)
    if model is None or labels is None:
        raise StressorError(f"cell {cell.stressor} {cell.severity:g} of {cell.model} is an "
                            "attack: rebuilding its images needs model= and labels=")
    return st(x, cell.severity, seed=cell.seed, indices=idx, model=model, labels=labels)


def cell_images(run_dir: str | os.PathLike, cell: Cell, indices, *,
                model=None) -> torch.Tensor:
    """The images the model saw in ``cell`` at dataset ``indices``: float N×3×H×W in [0, 1].

    Re-created from the run's resolved config (``eval_config.json``, or a ``config.json``
    holding the same keys), read as a ``ResolvedEvalConfig``: the cell's split (from its
    dataset key) is loaded, the rows with these dataset indices taken, and the cell's
    stressor applied (``stress_like_cell``; an attack's cell also needs its ``model``).
    """
    import torch
    path = RunFolder(run_dir).run_config()
    if path is None:
        raise FileNotFoundError(f"{Path(run_dir) / RUN_CONFIG_NAMES[0]} not found: cannot "
                                "re-create the evaluated images")
    cfg = read_run_config(path)
    key = parse_dataset_key(cell.dataset)
    if key.role == OFFICIAL:
        if cfg.official is None:
            raise KeyError(f"{path} names no released set (official) for cell {cell.dataset}")
        # Only the evaluated subset is decoded, drawn as the evaluation drew it.
        ds = _load(("official", cfg.official, cell.stressor, int(cell.severity),
                    cfg.image_size, cfg.subset))
    else:
        # A key that names its image size was evaluated at that size (the run's latest
        # config may have another); an untagged one at the data's own or the config's.
        ds = _load(("data", cfg.data, key.split, key.image_side or cfg.image_size))
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
    pos = torch.searchsorted(ds.indices, idx).clamp_max(len(ds) - 1)
    if not torch.equal(ds.indices[pos], idx):
        raise KeyError(f"dataset {cell.dataset} has no image with index "
                       f"{int(idx[ds.indices[pos] != idx][0])}")
    x = ds.images[pos].permute(0, 3, 1, 2).float().div(255.0)
    return stress_like_cell(x, cell, idx, model=model, labels=ds.labels[pos])


@functools.lru_cache(maxsize=2)
def _load(key: tuple):
    # A gallery asks for the same split once per cell; decoding (or regenerating the
    # synthetic set, ~1 s per 2000 images) once per gallery is enough.
    from ..data import load_corrupted, load_dataset
    if key[0] == "official":
        return load_corrupted(key[1], key[2], key[3], image_size=key[4], subset=key[5],
                              subset_seed=SUBSET_SEED)
    return load_dataset(key[1], key[2], image_size=key[3])
