"""The plan of an evaluation: its data sets and their store keys, its models built and
checked against the data, all loaded before anything is written.

>>> plan = prepare_plan(resolve_config(cfg), None, torch.device("cpu"))   # doctest: +SKIP
>>> plan.keys["main"], list(plan.models)                                  # doctest: +SKIP
('synthetic:test@500', ['cnn'])
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from ..data import Dataset
from ..models import Classifier, weights_hash
from ..models.wrapper import remember
from ..store import MAIN, OFFICIAL, VAL_SPLIT, VALIDATION, ResolvedEvalConfig
from ..stressors import get_stressor
from .config import IN_MEMORY, EvalError
from .inputs import build_model, check_classes, load_eval_dataset, official_key


@dataclass
class Plan:
    """Everything loaded and checked before the first write (data, keys, models)."""

    config: ResolvedEvalConfig
    device: torch.device
    data: dict[str, Dataset]
    keys: dict[str, str]
    sizes: dict[str, int]          # source -> images per cell
    models: dict[str, Classifier]
    records: dict[str, dict]


def prepare_plan(c: ResolvedEvalConfig, prebuilt: Mapping[str, Classifier] | None,
                 device: torch.device) -> Plan:
    """Load data and models and check them against each other; writes nothing.

    ``prebuilt``: classifiers handed over in Python for the models whose spec is
    ``IN_MEMORY``."""
    main, main_key = load_eval_dataset(c)
    data, keys = {MAIN: main}, {MAIN: main_key}
    if c.include_val:
        data[VALIDATION], keys[VALIDATION] = load_eval_dataset(c, VAL_SPLIT)
        if data[VALIDATION].classes != main.classes:
            raise EvalError(f"{c.data}: train-val classes differ from {c.split} classes")
    sizes = {k: len(v) for k, v in data.items()}
    if c.official:
        keys[OFFICIAL], sizes[OFFICIAL] = official_key(c)
    models, records = {}, {}
    for name, spec in c.models.items():
        if spec == IN_MEMORY:
            if not prebuilt or name not in prebuilt:
                raise EvalError(f"model {name!r} was evaluated in memory and cannot be rebuilt; "
                                "pass it again with run_evaluation(..., models={name: model})")
            model, spec_s = prebuilt[name], IN_MEMORY
            meta = {"source": "in-memory", "provenance": getattr(model, "source", {})}
        else:
            model, meta = build_model(spec, main.classes, seed=c.seed, device=device,
                                      data_size=main.image_size[0])
            spec_s = spec if isinstance(spec, str) else model.arch
        check_classes(name, model, main, c.data)
        models[name] = model
        digest = weights_hash(model)
        records[name] = {"spec": spec_s, "arch": model.arch, "weights_hash": digest,
                         "class_names": list(model.class_names), "meta": meta}
        if spec_s == IN_MEMORY:  # so analyses in this process (Grad-CAM) can reach it
            remember(digest, model)
    if _has_attacks(c):
        for name, model in models.items():
            check_attackable(name, model, int(main.images.shape[1]), device)
    return Plan(c, device, data, keys, sizes, models, records)


def _has_attacks(c: ResolvedEvalConfig) -> bool:
    return any(get_stressor(n).needs_model for n in [*c.stressors, *c.sweeps])


def check_attackable(name: str, model, size: int, device: torch.device) -> None:
    """Refuse, in one line, an attack on a model that gives no gradients (ONNX, frozen)."""
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.full((1, 3, size, size), 0.5, device=device, requires_grad=True)
        try:
            ok = bool(model(x).requires_grad)
        except RuntimeError:
            ok = False
    if not ok:
        raise EvalError(f"model {name!r} gives no gradients (a black-box ONNX or frozen "
                        "model?), so adversarial stressors cannot attack it; drop the attack "
                        "sweeps for this model")
