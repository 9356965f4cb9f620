"""The typed result every registered analysis returns, and the report renders.

``AnalysisResult`` replaces the free-form dict: per-model headline metrics live under
``per_model[model][metric]`` (no ``"<model>: <metric>"`` keys to parse), and the parameters the
analysis actually used (confidence threshold, bins, layer, sample size, ...) live in
``params`` so the report's prose can say "confidence above
{params['confidence_threshold']}" and stay right after ``--confidence-threshold 0.8``.

>>> r = AnalysisResult(name="demo", params={"confidence_threshold": 0.9})
>>> r.per_model["m"] = {"accuracy": 0.5}
>>> AnalysisResult.from_dict(r.to_dict()).per_model["m"]["accuracy"]
0.5
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

_SCALARS = (str, int, float, bool, type(None))


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
    # Nested raw data behind figures (reliability bins, drift curves, confusion matrices,
    # per-model failure records): JSON values of any shape, for the explorer and re-plots.
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnalysisResult:
        figs = [f if isinstance(f, Figure) else Figure(**f) for f in d.get("figures", [])]
        return cls(name=d["name"], params=dict(d.get("params", {})),
                   per_model={k: dict(v) for k, v in d.get("per_model", {}).items()},
                   summary=dict(d.get("summary", {})), figures=figs,
                   tables={k: list(v) for k, v in d.get("tables", {}).items()},
                   notes=list(d.get("notes", [])), data=dict(d.get("data", {})))

    def metric(self, model: str, name: str, default: Any = None) -> Any:
        return self.per_model.get(model, {}).get(name, default)

    def add_figure(self, entry: dict | Figure, model: str | None = None,
                   stressor: str | None = None) -> None:
        """Append a figure given as ``{"path", "caption"}`` (what ``_figures.save`` returns)."""
        if isinstance(entry, Figure):
            self.figures.append(entry)
        else:
            self.figures.append(Figure(str(entry["path"]), str(entry["caption"]),
                                       model=model, stressor=stressor))

    def problems(self) -> list[str]:
        """What breaks the contract (empty when valid): per_model, summary and table cells
        must be JSON scalars, params JSON scalars or lists of them, figures relative."""
        out = []
        if not self.name:
            out.append("name is empty")
        for m, metrics in self.per_model.items():
            out += [f"per_model[{m!r}][{k!r}] is {type(v).__name__}, not a scalar"
                    for k, v in metrics.items() if not isinstance(v, _SCALARS)]
        out += [f"summary[{k!r}] is {type(v).__name__}, not a scalar"
                for k, v in self.summary.items() if not isinstance(v, _SCALARS)]
        for k, v in self.params.items():
            vals = v if isinstance(v, (list, tuple)) else [v]
            if not all(isinstance(x, _SCALARS) for x in vals):
                out.append(f"params[{k!r}] is not a scalar or a list of scalars")
        for t, rows in self.tables.items():
            for i, r in enumerate(rows):
                if not isinstance(r, dict):
                    out.append(f"tables[{t!r}][{i}] is not a dict")
                    break
                bad = [k for k, v in r.items() if not isinstance(v, _SCALARS)]
                if bad:
                    out.append(f"tables[{t!r}][{i}][{bad[0]!r}] is not a scalar")
                    break
        for f in self.figures:
            if not isinstance(f, Figure) or f.path.startswith("/") or ".." in f.path:
                out.append(f"figure {f!r} is not a Figure with a relative path")
        out += [f"note {n!r} is not a string" for n in self.notes if not isinstance(n, str)]
        return out


def is_number(x: Any) -> bool:
    """A finite int or float that is not a bool (what a table cell can plot)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
