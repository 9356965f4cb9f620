"""The typed result every registered analysis returns, and the report renders.

``AnalysisResult`` replaces the free-form dict: per-model headline metrics live under
``per_model[model][metric]`` (no ``"<model>: <metric>"`` keys to parse), and the parameters the
analysis actually used (threshold, bins, layer, sample size, ...) live in ``params`` so the
report's prose can say "confidence above {params['threshold']}" and stay right after
``--threshold 0.8``.

>>> r = AnalysisResult(name="demo", params={"threshold": 0.9})
>>> r.per_model["m"] = {"accuracy": 0.5}
>>> AnalysisResult.from_dict(r.to_dict()).per_model["m"]["accuracy"]
0.5
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    path: str          # relative to the analysis output folder, e.g. "figures/curves.png"
    caption: str
    model: str | None = None          # the model it shows, None when it shows several
    stressor: str | None = None       # the corruption it shows, None when several


@dataclass
class AnalysisResult:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    # model -> metric -> JSON scalar (float, int, str, bool or None)
    per_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    # study-level headline values (JSON scalars), e.g. {"headline": "largest drop: ..."}
    summary: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    # table name -> rows (dicts of JSON scalars)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnalysisResult:
        figs = [f if isinstance(f, Figure) else Figure(**f) for f in d.get("figures", [])]
        return cls(name=d["name"], params=dict(d.get("params", {})),
                   per_model={k: dict(v) for k, v in d.get("per_model", {}).items()},
                   summary=dict(d.get("summary", {})), figures=figs,
                   tables={k: list(v) for k, v in d.get("tables", {}).items()},
                   notes=list(d.get("notes", [])))

    def metric(self, model: str, name: str, default: Any = None) -> Any:
        return self.per_model.get(model, {}).get(name, default)
