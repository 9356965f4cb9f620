"""The plan of an evaluation: its data sets and their store keys, its models built and
checked against the data, all loaded before anything is written.

>>> plan = prepare_plan(resolve_config(cfg), None, torch.device("cpu"))   # doctest: +SKIP
>>> plan.keys["main"], list(plan.models)                                  # doctest: +SKIP
('synthetic:test@500', ['cnn'])
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from ..data import Dataset
from ..models import Classifier, ModelError, weights_hash
from ..models.checkpoint import tensor_hashes
from ..models.errors import first_line
from ..models.wrapper import remember
from ..store import MAIN, OFFICIAL, VAL_SPLIT, VALIDATION, ResolvedEvalConfig
from ..store.sanity import statistics_warning
from ..stressors import get_stressor
from ._memory import affordable_batch, free_bytes, is_out_of_memory
from .config import IN_MEMORY, EvalError
from .inputs import build_model, check_classes, load_eval_dataset, official_key, size_note


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
    batch_size: int = 0            # images per forward pass: the config's, capped to fit memory


def prepare_plan(c: ResolvedEvalConfig, prebuilt: Mapping[str, Classifier] | None,
                 device: torch.device) -> Plan:
    """Load data and models and check them against each other; writes nothing.

    ``prebuilt``: classifiers handed over in Python for the models whose spec is
    ``IN_MEMORY``."""
    main, main_key = load_eval_dataset(c)
    note = size_note(c, main.image_size[0])
    if c.image_size is not None and main.image_size != (c.image_size, c.image_size):
        note = (f"--image-size {c.image_size} is not applied to {c.data}: its images stay "
                f"{main.image_size[0]}×{main.image_size[1]} px (only data decoded from image "
                "files is resized: folders, ImageNet, Hub sets; --input-size resizes for the "
                "network)")
    if note:
        print(note, file=sys.stderr)
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
        check_output(name, model, main, c.data, device)
        models[name] = model
        digest = weights_hash(model)
        meta["tensor_hashes"] = tensor_hashes(model)  # to name what differs on a mismatch
        if c.autocast:  # part of the model's identity in the store (runner.check_known_models)
            meta["autocast"] = c.autocast
        records[name] = {"spec": spec_s, "arch": model.arch, "weights_hash": digest,
                         "class_names": list(model.class_names), "meta": meta}
        if spec_s == IN_MEMORY:  # so analyses in this process (Grad-CAM) can reach it
            remember(digest, model)
    if _has_attacks(c):
        for name, model in models.items():
            check_attackable(name, model, int(main.images.shape[1]), device)
    side = main.image_size
    batch = affordable_batch(c.batch_size, side, free_bytes(device))
    if batch < c.batch_size:
        print(f"batch: {batch} images of {side[0]}×{side[1]} px per forward pass (asked "
              f"{c.batch_size}; that is what fits a quarter of the memory free on {device}; "
              "results do not depend on it)", file=sys.stderr)
    return Plan(c, device, data, keys, sizes, models, records, batch)


def check_output(name: str, model, ds: Dataset, data: str, device: torch.device) -> None:
    """Run ``model`` on the first two images of ``ds``: the output must be N×K logits for the
    data's K classes (a 1000-way head on 10-class data would score 0 % as if real). One
    line for anything else: an exception, a wrong shape, a wrong width."""
    x = ds.float_batch(0, min(2, len(ds)), device)
    try:
        with torch.inference_mode():
            z = model(x)
    except ModelError as e:
        raise EvalError(f"model {name!r}: {e}") from None
    except (Exception, SystemExit) as e:  # whatever the user's network raises
        if is_out_of_memory(e):
            raise
        raise EvalError(f"model {name!r} failed on the first images of {data} "
                        f"({first_line(e)})") from None
    k = len(ds.classes)
    if z.shape[1] != k:
        raise EvalError(f"model {name!r} outputs {z.shape[1]} logits per image but {data} has "
                        f"{k} classes; give it a {k}-way head (e.g. --num-classes {k} with "
                        "weights trained for them), map its classes onto the data's (class_map "
                        "in its spec), or evaluate it on the data it was trained for")
    note = getattr(model, "output_note", None)
    if note:
        print(f"model {name!r}: {note}", file=sys.stderr)
    mean, std = getattr(model, "mean", None), getattr(model, "std", None)
    if isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor):
        warn = statistics_warning(name, mean.flatten().tolist(), std.flatten().tolist())
        if warn:
            print(f"warning: {warn}", file=sys.stderr)


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
