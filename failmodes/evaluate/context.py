"""Reopen an evaluated run: its store, resolved config, models and data, for analyses.

>>> ctx = open_run("runs/r18")                                   # doctest: +SKIP
>>> cell = ctx.store.cells(model="r18", stressor="fog")[0]        # doctest: +SKIP
>>> ds = ctx.dataset()          # the images behind cell rows: same subset, same indices  # doctest: +SKIP
>>> model = ctx.model("r18")    # eval mode, weights checked against the store's hash  # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .._device import resolve_device
from ..config import from_dict
from ..data import Dataset
from ..models import Classifier, weights_hash
from ..models.checkpoint import differing_keys, legacy_weights_hash, tensor_hashes
from ..store import (
    CONFIG_NAME,
    SIZE_TAG,
    VAL_SPLIT,
    ResolvedEvalConfig,
    ResultsStore,
    RunFolder,
    StoreError,
    parse_dataset_key,
    read_run_config,
)
from .config import IN_MEMORY, EvalError
from .inputs import build_model, load_eval_dataset


@dataclass
class RunContext:
    """An evaluated run folder: ``store`` (ResultsStore), ``config`` (its ResolvedEvalConfig)."""

    run_dir: Path
    store: ResultsStore
    config: ResolvedEvalConfig

    def model_names(self) -> list[str]:
        return [m["name"] for m in self.store.models()]

    def model(self, name: str, device: torch.device | str | None = None) -> Classifier:
        """The model ``name`` rebuilt from its stored spec, in eval mode on ``device``
        (default: the run's device). Raises EvalError when the weights changed since."""
        rec = next((m for m in self.store.models() if m["name"] == name), None)
        if rec is None:
            raise EvalError(f"model {name!r} is not in {self.store.path}; "
                            f"choose from {', '.join(self.model_names())}")
        meta = rec["meta"]
        if rec["spec"] == IN_MEMORY:
            from ..models.wrapper import recall
            kept = recall(rec["weights_hash"])
            if kept is None:
                raise EvalError(f"model {name!r} was evaluated in memory and cannot be rebuilt; "
                                "keep the wrapped model alive in this process, or save it")
            return kept  # the caller's own object: its device and mode stay as they are
        spec = meta["spec"]  # failmodes.models.load_model's resolved spec
        dev = resolve_device(self.config.device) if device is None else torch.device(device)
        model, _ = build_model(spec, rec["class_names"], seed=meta.get("init_seed", 0),
                               device="cpu")
        if rec["weights_hash"] not in (weights_hash(model), legacy_weights_hash(model)):
            what = differing_keys(meta.get("tensor_hashes") or {}, tensor_hashes(model))
            raise EvalError(f"model {name!r}: the weights of {spec} changed since this run was "
                            f"evaluated (differing: {what}); re-evaluate into a new --out")
        return model.to(dev).eval()

    def dataset(self, split: str | None = None) -> Dataset:
        """The evaluated data: the config's split (or ``"train-val"``), subset applied,
        dataset indices as stored in the cells' rows."""
        return load_eval_dataset(self.config, split)[0]

    def dataset_key(self, split: str | None = None) -> str:
        """The store's dataset string for ``split`` (e.g. ``"cifar10:test@2000"``)."""
        key = load_eval_dataset(self.config, split)[1]
        side = parse_dataset_key(key).image_side
        if side is None or self.store.cells(dataset=key, status=None):
            return key
        # A run stored before keys carried the image size holds the same cells untagged.
        legacy = key.replace(SIZE_TAG.format(side), "", 1)
        return legacy if self.store.cells(dataset=legacy, status=None) else key

    @property
    def val_split(self) -> str:
        return VAL_SPLIT

    def close(self) -> None:
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_run(run_dir: str | Path, readonly: bool = True) -> RunContext:
    """Open ``run_dir`` (holding results.sqlite and eval_config.json) for analysis."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    store = ResultsStore(folder.store, readonly=readonly)
    cfg_path = folder.eval_config
    try:
        if cfg_path.is_file():
            config = read_run_config(cfg_path)
        else:  # the store keeps every run's config too
            raw = store.latest_config()
            if raw is None:
                raise StoreError(f"{run_dir} has no {CONFIG_NAME} and its store records no run")
            config = from_dict(ResolvedEvalConfig, raw, where=f"{folder.store} (latest run)")
    except Exception:
        store.close()
        raise
    return RunContext(run_dir, store, config)
