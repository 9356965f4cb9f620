"""The analysis registry: the one list of analyses that the CLI, the study runner and the
report read, in report order.

An analysis is ``fn(run_dir: Path, out_dir: Path, **options) -> AnalysisResult``. It reads
the run's store (``failmodes.store.RunFolder(run_dir).store``) and whatever else the run
folder holds, writes
``out_dir / f"{name}.json"`` (``result.to_dict()``, via ``write_result``) and its figures
under ``out_dir / "figures"``, and returns the ``AnalysisResult`` (``result.py``): per-model
metrics, the parameters it used, summary, figures, tables, notes and nested ``data``.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._atomic import write_text_atomic
from .result import AnalysisResult


@dataclass(frozen=True)
class Analysis:
    name: str
    title: str
    fn: Callable[..., AnalysisResult]
    order: int


_REGISTRY: dict[str, Analysis] = {}


def register_analysis(name: str, *, title: str, order: int):
    """Decorator filing an analysis; ``order`` places its section in the report."""
    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"analysis {name!r} registered twice")
        _REGISTRY[name] = Analysis(name, title, fn, order)
        return fn
    return wrap


def list_analyses() -> list[Analysis]:
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda a: a.order)


def get_analysis(name: str) -> Analysis:
    _load_all()
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


def _load_all() -> None:
    # Each analysis module registers itself on import; a module not written yet is skipped.
    import importlib
    for mod in ("metrics", "curves", "failures", "calibration", "cam", "claims"):
        try:
            importlib.import_module(f"{__package__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{mod}":
                raise
