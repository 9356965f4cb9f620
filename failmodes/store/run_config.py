"""The resolved evaluation config a run folder keeps (``eval_config.json``, and each run's
row of the store), read back typed.

``failmodes.evaluate.resolve_config`` turns what the user gave (``EvalConfig``) into this:
every default filled, models named, suites expanded, values parsed, paths absolute. The
store layer reads it back to rebuild a cell's images; ``evaluate.open_run`` to reopen a run.

>>> c = ResolvedEvalConfig(data="synthetic", models={"cnn": "/runs/cnn/model.pt"},
...                        stressors=["fog"], sweeps={"rotation": [-30.0, 0.0, 30.0]})
>>> c.severities, c.sweeps["rotation"][0]
([1.0, 2.0, 3.0, 4.0, 5.0], -30.0)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import from_dict


@dataclass
class ResolvedEvalConfig:
    """An evaluation with nothing left implicit (see ``failmodes.evaluate.EvalConfig`` for
    what each field means).

    models: ``{name: spec}``, specs absolute. stressors: the corruptions (suites expanded;
    sweep stressors live in ``sweeps``). severities: sorted, unique corruption severities.
    sweeps: ``{stressor: sorted unique values}`` in the stressor's natural unit (a
    corruption listed here gets these extra severities). official: the released corrupted
    set's absolute spec (``cifar10c:PATH``, ...) or None. out: the absolute run folder.
    """

    data: str          # no default: a saved run always names the data it evaluated
    models: dict[str, Any] = field(default_factory=dict)
    split: str = "test"
    subset: int | None = None
    stressors: list[str] = field(default_factory=list)
    severities: list[float] = field(default_factory=lambda: [1.0, 2.0, 3.0, 4.0, 5.0])
    sweeps: dict[str, list[float]] = field(default_factory=dict)
    seed: int = 0
    batch_size: int = 256
    device: str = "auto"
    include_val: bool = False
    val_subset: int | None = 5000
    official: str | None = None
    finish: str = "none"
    image_size: int | None = None
    store_logits: bool = True
    channels_last: bool = False     # NHWC batches (same predictions)
    autocast: str | None = None     # "bf16": models ran under bfloat16 autocast
    out: str = "runs/eval"


def read_run_config(path: str | os.PathLike) -> ResolvedEvalConfig:
    """The resolved config saved in ``path`` (a JSON file holding ``{"config": {...}}`` and
    the library versions, or the bare mapping). An unknown key or a wrong type raises a
    ``ConfigError`` naming the file and the key."""
    path = Path(path)
    data = json.loads(path.read_text())
    raw = data.get("config", data) if isinstance(data, dict) else data
    if isinstance(raw, dict) and "data" not in raw:
        raise KeyError(f"{path} has no 'data' key naming the evaluated dataset")
    return from_dict(ResolvedEvalConfig, raw, where=str(path))
