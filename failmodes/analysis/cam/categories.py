"""Failure categories of confident Grad-CAM failures, each calibrated against a null.

The rule (``categorize_failure``), in order: ``fine_grained`` when true and predicted class
share a superclass; ``context`` when, across superclasses, the predicted class's map puts
unusually much mass on the border band; ``other`` otherwise. "Unusually" is measured
against structureless maps (``null_rule``): i.i.d. uniform random values at the CAM layer's
own resolution, upsampled like real maps. The border threshold is their ``1 − NULL_ALPHA``
quantile (never below the band's area, which a uniform map gives), so about ``NULL_ALPHA``
= 4 % of random maps (and no uniform map) read as context; the measured null rate is
reported beside the counts.

The overlap of the predicted with the true class's map is recorded, not used: a threshold
calibrated on noise maps (diffuse, overlapping a lot) calls two compact maps that both sit
on the object "context" (σ = 1 cell blobs 4 px apart overlap 0.64 against a noise quantile
of 0.73: review 2026-12-06, 2(f)); peaky real maps overlap little wherever they are.

>>> rule = null_rule((8, 8), (32, 32))                        # doctest: +SKIP
>>> rule.null_context_rate <= 0.10                            # doctest: +SKIP
True
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from ._core import CamError
from ._measures import BAND_AREA, BORDER_BAND, border_share, upsample

FAILURE_TYPES = ("fine_grained", "context", "other")
NULL_ALPHA = 0.04      # share of structureless maps the border criterion calls context
NULL_MAPS = 2000       # random map pairs drawn (seeded) to calibrate and to measure the rate
NULL_SEED = 0


@dataclass(frozen=True)
class ContextRule:
    """Thresholds of the context category and what they give on structureless maps."""

    border_threshold: float     # border-band share above this is "off the object"
    null_context_rate: float    # share of random map pairs that the rule calls context
    uniform_is_context: bool    # whether uniform maps are called context (must be False)
    map_size: tuple[int, int]   # the CAM layer's resolution it was calibrated at
    # The overlap criterion is dropped (module doc); None keeps the field readable.
    overlap_threshold: float | None = None


def null_rule(map_size: tuple[int, int], image_size: tuple[int, int], *,
              band: float = BORDER_BAND, alpha: float = NULL_ALPHA, n: int = NULL_MAPS,
              seed: int = NULL_SEED) -> ContextRule:
    """Calibrate the context rule on random maps of ``map_size`` upsampled to ``image_size``
    (one draw to set the threshold, an independent one to measure the null rate)."""
    g = torch.Generator().manual_seed(seed)

    def draw():
        return upsample(torch.rand(n, *map_size, generator=g), image_size)

    area = 1 - (1 - 2 * band) ** 2
    b_thr = max(area, float(np.quantile(border_share(draw(), band), 1 - alpha)))
    rate = float(np.mean(border_share(draw(), band) > b_thr))
    uniform = bool(border_share(torch.ones(1, *image_size), band)[0] > b_thr)
    return ContextRule(b_thr, rate, uniform, cast(tuple[int, int], tuple(map_size)))


def superclass_lookup(spec: str | None = "auto", class_names: Sequence[str] = ()
                      ) -> Callable[[str], str | None]:
    """``class name -> superclass`` (None when unknown: never fine-grained), from the one
    superclass resolver the failures analysis uses too (``superclasses.resolve_superclasses``):
    ``auto`` is the same map in both. ``"fine"`` / ``"coarse"`` are aliases of the built-in
    ``cifar10-fine`` / ``cifar10`` maps."""
    from ..superclasses import SuperclassError, resolve_superclasses
    spec = {"fine": "cifar10-fine", "coarse": "cifar10"}.get(spec, spec) if spec is not None else None
    names = list(class_names)
    if not names and spec in ("cifar10", "cifar10-fine"):
        from ..superclasses import CIFAR10_CLASSES
        names = list(CIFAR10_CLASSES)
    try:
        m = resolve_superclasses(spec, names)
    except SuperclassError as e:
        raise CamError(str(e)) from None
    if m is None:
        return lambda name: None
    lookup = {c: m.names[g] for c, g in zip(names, m.group_of.tolist()) if g >= 0}
    return lookup.get


def categorize_failure(true_name: str, pred_name: str, pred_border_share: float,
                       pred_true_overlap: float, superclass_of: Callable[[str], str | None], *,
                       border_threshold: float = BAND_AREA,
                       overlap_threshold: float | None = None) -> str:
    """The failure type of one wrong prediction, by this rule, in order:

    1. ``fine_grained``: true and predicted class share a (known) superclass (cat → dog).
    2. ``context``: across superclasses, and the predicted class's CAM puts more mass on
       the border band than ``border_threshold``: the evidence was found off the object
       (ship → airplane on sky-blue water). The analysis passes the threshold from
       ``null_rule``; the default (the band's area) is uncalibrated. ``overlap_threshold``
       (None: unused, the analysis's choice) adds "overlaps the true class's CAM by less"
       as a second route, for callers who calibrated it on real map pairs.
    3. ``other``: everything else (including NaN CAM statistics).

    >>> categorize_failure("cat", "dog", 0.2, 0.9, superclass_lookup("cifar10"))
    'fine_grained'
    """
    st, sp = superclass_of(true_name), superclass_of(pred_name)
    if st is not None and st == sp:
        return "fine_grained"
    if pred_border_share > border_threshold or (
            overlap_threshold is not None and pred_true_overlap < overlap_threshold):
        return "context"
    return "other"
