"""Which stored stress cell does an unlabelled batch look like?

The distance between two batches' outputs is the mean over classes of the 1-D Wasserstein-1
distance between their softmax probabilities for that class:

    D(A, B) = (1/C) Σ_k W1(p_k over A, p_k over B),   in probability units, in [0, 1].

It sees both what the model predicts (a shift that pushes images to "frog" moves the frog
column) and how sure it is (a blur that flattens the softmax moves every column). W1 is
computed from quantile functions on a common grid of ``LEVELS`` probability levels
(midpoints), so every stored cell is summarised once as an ``LEVELS``×C matrix; with
equal-size batches and ``LEVELS`` = N it is exact, otherwise within the grid's step.

>>> a = torch.tensor([[0.9, 0.1], [0.6, 0.4]]); b = torch.tensor([[0.8, 0.2], [0.5, 0.5]])
>>> round(output_distance(output_quantiles(a), output_quantiles(b)), 6)
0.1
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..store import Cell
from ._checks import EstimateError, check_outputs

LEVELS = 512


def output_quantiles(probs, levels: int = LEVELS) -> torch.Tensor:
    """``levels``×C quantiles of each softmax column at levels (i + ½)/levels."""
    p = check_outputs(probs, "probabilities")
    q = (torch.arange(levels, dtype=torch.float64) + 0.5) / levels
    # 'inverted_cdf' keeps the empirical quantile function itself (a step function), whose
    # integral of |F⁻¹ − G⁻¹| is W1.
    sorted_p = torch.sort(p, dim=0).values
    idx = torch.clamp(torch.ceil(q * p.shape[0]).long() - 1, 0, p.shape[0] - 1)
    return sorted_p[idx]


def output_distance(qa: torch.Tensor, qb: torch.Tensor) -> float:
    """D above from two quantile matrices (``output_quantiles``)."""
    return float((qa - qb).abs().mean())


@dataclass(frozen=True)
class NearestCell:
    """A stored cell and how far the batch's outputs are from it."""

    model: str
    dataset: str
    stressor: str
    severity: float
    family: str
    distance: float       # D above
    accuracy: float       # measured on the cell's labels
    confidence: float     # mean max-probability: confidence − accuracy is the overconfidence
    n_images: int
    regime: str | None = None   # the curves analysis's failure regime of the stressor, if known

    def as_dict(self) -> dict:
        return {"model": self.model, "dataset": self.dataset, "stressor": self.stressor,
                "severity": self.severity, "family": self.family, "distance": self.distance,
                "accuracy": self.accuracy, "confidence": self.confidence,
                "overconfidence": self.confidence - self.accuracy, "n_images": self.n_images,
                "regime": self.regime}

    def describe(self) -> str:
        what = "clean" if self.stressor == "clean" else f"{self.stressor} at {self.severity:g}"
        regime = f", regime {self.regime}" if self.regime else ""
        return f"looks like {what} (stored accuracy {100 * self.accuracy:.1f} %{regime})"


@dataclass(frozen=True)
class CellOutputs:
    """One stored cell's summary for ``nearest_cells``."""

    cell: Cell
    family: str
    quantiles: torch.Tensor    # LEVELS×C
    accuracy: float
    confidence: float
    n_images: int


def stored_cell_outputs(run_dir: str | os.PathLike, model: str,
                        levels: int = LEVELS) -> list[CellOutputs]:
    """Every done cell of ``model`` in the run's store with stored logits, summarised."""
    from ..store import ResultsStore, RunFolder, StoreError, stressor_family
    path = RunFolder(run_dir).store
    if not os.path.exists(path):
        raise EstimateError(f"{run_dir}: no results store ({path}); evaluate first")
    out = []
    try:
        with ResultsStore(path, readonly=True) as st:
            if model not in [m["name"] for m in st.models()]:
                raise EstimateError(f"{run_dir}: no model {model!r} in the store (it has "
                                    f"{[m['name'] for m in st.models()]})")
            for cell in st.cells(model=model):
                rows = st.predictions(cell, logits=True)
                if rows["logits"] is None or len(rows["idx"]) == 0:
                    continue
                p = torch.softmax(torch.from_numpy(rows["logits"]).double(), dim=1)
                correct = torch.from_numpy(rows["pred"] == rows["label"])
                out.append(CellOutputs(cell=cell, family=stressor_family(cell.stressor),
                                       quantiles=output_quantiles(p, levels),
                                       accuracy=float(correct.double().mean()),
                                       confidence=float(p.amax(1).mean()),
                                       n_images=len(rows["idx"])))
    except StoreError as e:
        raise EstimateError(f"{run_dir}: {e}") from None
    return out


def nearest_cells(probs, cells: list[CellOutputs], k: int = 5) -> list[NearestCell]:
    """The ``k`` cells whose outputs are nearest (D above) to the batch's softmax ``probs``."""
    if not cells:
        return []
    q = output_quantiles(probs, cells[0].quantiles.shape[0])
    if q.shape[1] != cells[0].quantiles.shape[1]:
        raise EstimateError(f"nearest cells: the batch has {q.shape[1]} classes, the stored "
                            f"cells {cells[0].quantiles.shape[1]}")
    ranked = sorted(cells, key=lambda c: output_distance(q, c.quantiles))[:k]
    return [NearestCell(model=c.cell.model, dataset=c.cell.dataset,
                        stressor=c.cell.stressor, severity=c.cell.severity,
                        family=c.family, distance=output_distance(q, c.quantiles),
                        accuracy=c.accuracy, confidence=c.confidence, n_images=c.n_images)
            for c in ranked]
