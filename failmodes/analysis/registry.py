"""The analysis registry: the one list of analyses that the CLI, the study runner and the
report read, in report order. Each analysis package under ``failmodes/analysis/`` files
itself here when ``failmodes.analysis`` imports it (timm's way: no hand-kept list).

An analysis is ``fn(run_dir: Path, out_dir: Path, **options) -> AnalysisResult`` whose
keyword options are exactly the fields of its options dataclass. It reads the run's store
(``failmodes.store.RunFolder(run_dir).store``) and whatever else the run folder holds,
writes ``out_dir / f"{name}.json"`` (``result.to_dict()``, via ``write_result``) and its
figures under ``out_dir / "figures"``, and returns the ``AnalysisResult`` (``result.py``):
per-model metrics, the parameters it used, summary, figures, tables, notes and nested
``data``. Its registration declares what the rest of the product needs to know about it:
the options (typed, checked when a study file loads), the report section's intro, whether
``failmodes analyze`` runs it and its headline metrics (the report's first screen and
``summary.md``).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._atomic import write_text_atomic
from ..config import ConfigError, from_dict
from .result import AnalysisResult

UNITS = ("fraction", "percent", "ratio")


@dataclass(frozen=True)
class Headline:
    """One per-model number an analysis leads with: ``per_model[model][key]`` of its
    result. ``unit``: ``fraction`` (0–1, shown as a percentage), ``percent`` (0–100) or
    ``ratio`` (a plain number); ``higher_is_better`` as torchmetrics declares it; ``note``:
    one line saying how it is defined, shown under the value."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    note: str = ""
    # Why the value is absent for a model whose per_model row is given (None: generic words).
    explain_missing: Callable[[Mapping[str, Any]], str] | None = None

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"headline {self.key!r}: unit {self.unit!r} is not one of "
                             f"{', '.join(UNITS)}")


@dataclass
class NoOptions:
    """The options of an analysis that takes none."""


@dataclass(frozen=True)
class Analysis:
    name: str
    title: str
    fn: Callable[..., AnalysisResult]
    order: int
    options: type = NoOptions          # a dataclass: fn's keyword options, typed
    intro: str = ""                    # the report section's opening paragraph
    analyze: bool = False              # `failmodes analyze` runs it
    headlines: tuple[Headline, ...] = ()

    def parse_options(self, data: Mapping[str, Any] | None = None,
                      where: str | None = None) -> Any:
        """``data`` (a study file's ``analysis_options.<name>``) as the options dataclass:
        unknown keys and wrong types raise ``ConfigError`` naming the key."""
        where = where or f"analysis_options.{self.name}"
        if not isinstance(data, Mapping) and data is not None:
            raise ConfigError(f"{where}: expected a mapping of options, got "
                              f"{type(data).__name__}")
        allowed = [f.name for f in dataclasses.fields(self.options)]
        unknown = sorted(set(data or {}) - set(allowed))
        if unknown:
            raise ConfigError(f"{where}: unknown option(s) {', '.join(map(str, unknown))} "
                              f"(allowed: {', '.join(allowed) or 'none'})")
        return from_dict(self.options, dict(data or {}), where)

    def run(self, run_dir: str | Path, out_dir: str | Path, options: Any = None) -> AnalysisResult:
        """``fn(run_dir, out_dir, **options)`` with ``options`` an instance of the options
        dataclass (default: its defaults)."""
        opts = options if options is not None else self.options()
        kwargs = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
        return self.fn(Path(run_dir), Path(out_dir), **kwargs)


_REGISTRY: dict[str, Analysis] = {}


def register_analysis(name: str, *, title: str, order: int, options: type, intro: str,
                      analyze: bool = False, headlines: tuple[Headline, ...] = ()):
    """Decorator filing an analysis; ``order`` places its section in the report."""
    if not dataclasses.is_dataclass(options):
        raise TypeError(f"analysis {name!r}: options must be a dataclass, got {options!r}")

    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"analysis {name!r} registered twice")
        _REGISTRY[name] = Analysis(name, title, fn, order, options, intro, analyze,
                                   tuple(headlines))
        return fn
    return wrap


def list_analyses() -> list[Analysis]:
    return sorted(_REGISTRY.values(), key=lambda a: a.order)


def get_analysis(name: str) -> Analysis:
    if name not in _REGISTRY:
        raise ValueError(f"unknown analysis {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def write_result(out_dir: Path, name: str, result: AnalysisResult | dict) -> Path:
    """Write ``out_dir/<name>.json`` atomically (NaN-safe: non-finite floats become null).

    ``result`` is an ``AnalysisResult`` (written as ``to_dict()``), or a plain dict for the
    outputs that are not registered analyses (probes)."""
    if isinstance(result, AnalysisResult):
        bad = result.problems()
        if bad:
            raise TypeError(f"analysis {result.name!r} broke the AnalysisResult contract: "
                            f"{bad[0]}")
        result = result.to_dict()
    return write_text_atomic(Path(out_dir) / f"{name}.json",
                             json.dumps(_finite(result), indent=1, default=str))


def _finite(x):
    if isinstance(x, float):
        return x if x == x and abs(x) != float("inf") else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:  # numpy / torch scalars
        return _finite(x.item())
    return x
