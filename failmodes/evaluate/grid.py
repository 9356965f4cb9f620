"""The evaluation grid: models × datasets × (stressor, severity) cells, grouped by the
stressed image set they share.

A cell is one (model, dataset, stressor, severity-or-value, seed) and the unit of work and
of resumption. The cells of one (dataset, stressor, severity) form a ``Group``: its images
are stressed once per batch and fed to every model of the group.

>>> keys = build_cells(EvalConfig(models=["small_cnn"], stressors=["fog"], severities=[1, 2]))
>>> [(k.stressor, k.severity) for k in keys]
[('clean', 0.0), ('fog', 1.0), ('fog', 2.0)]
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..store import CLEAN, MAIN, OFFICIAL, VAL_SPLIT, VALIDATION, CellKey, ResolvedEvalConfig
from .config import EvalConfig, _fmt, resolve_config
from .inputs import load_eval_dataset, official_key


@dataclass(frozen=True)
class Group:
    """The cells that share one stressed image set: same dataset, stressor and severity."""

    source: str              # the dataset key's role: main | val | official
    dataset: str             # store key, e.g. "cifar10:test@2000"
    stressor: str
    severity: float
    models: tuple[str, ...]

    def keys(self, seed: int) -> list[CellKey]:
        return [CellKey(m, self.dataset, self.stressor, self.severity, seed) for m in self.models]

    @property
    def label(self) -> str:
        return f"{self.stressor} {_fmt(self.severity)} on {self.dataset}"


def groups_of(config: ResolvedEvalConfig, keys: dict[str, str]) -> list[Group]:
    """Every group of a resolved config, clean first; ``keys`` maps source -> dataset key."""
    models = tuple(config.models)
    out = [Group(MAIN, keys[MAIN], CLEAN, 0.0, models)]
    for n in config.stressors:
        out += [Group(MAIN, keys[MAIN], n, s, models) for s in config.severities if s != 0]
    for n, vals in config.sweeps.items():
        out += [g for g in (Group(MAIN, keys[MAIN], n, v, models) for v in vals)
                if g not in out]
    if VALIDATION in keys:
        out.append(Group(VALIDATION, keys[VALIDATION], CLEAN, 0.0, models))
    if OFFICIAL in keys:
        for n in config.stressors:
            out += [Group(OFFICIAL, keys[OFFICIAL], n, s, models)
                    for s in config.severities if s in (1, 2, 3, 4, 5)]
    return out


def build_cells(config: EvalConfig | Mapping) -> list[CellKey]:
    """Every cell key of the grid (clean first), without building models or writing."""
    c = resolve_config(config)
    plan_keys = dataset_keys(c)
    return [k for g in groups_of(c, plan_keys) for k in g.keys(c.seed)]


def dataset_keys(c: ResolvedEvalConfig) -> dict[str, str]:
    keys = {MAIN: load_eval_dataset(c)[1]}
    if c.include_val:
        keys[VALIDATION] = load_eval_dataset(c, VAL_SPLIT)[1]
    if c.official:
        keys[OFFICIAL] = official_key(c)[0]
    return keys
