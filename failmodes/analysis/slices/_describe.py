"""Words and pictures for a slice: a cluster's description from its over-represented
attribute bins and classes, the one-sentence summary, the most typical images."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._attributes import Condition
    from ._find import Slice

# A bin describes a cluster when at least this share of the cluster is in it and the bin is
# at least LIFT times as common in the cluster as overall.
SHARE, LIFT = 0.5, 1.5


def over_represented(mask: np.ndarray, conditions: list[Condition], n: int = 2) -> list[str]:
    """Texts of the ≤ ``n`` conditions most over-represented among ``mask``'s images
    (share ≥ 50 % inside and ≥ 1.5× the overall share), highest lift first."""
    rows = []
    for c in conditions:
        inside, overall = c.mask[mask].mean(), c.mask.mean()
        if inside >= SHARE and overall > 0 and inside / overall >= LIFT:
            rows.append((inside / overall, c.text))
    return [t for _, t in sorted(rows, key=lambda r: -r[0])[:n]]


def describe_cluster(mask: np.ndarray, name: str, conditions: list[Condition],
                     labels: np.ndarray, class_names: list[str]) -> str:
    """E.g. "cluster 3 (disk 55 %, square 40 %; blue background (border hue 195–255°))"."""
    lab = labels[mask]
    counts = np.bincount(lab, minlength=len(class_names))
    top = [i for i in np.argsort(-counts, kind="stable")[:2] if counts[i] > 0]
    classes = ", ".join(f"{class_names[i]} {100 * counts[i] / max(1, len(lab)):.0f} %"
                        for i in top)
    attrs = over_represented(mask, conditions)
    return f"{name} ({classes}" + (f"; {'; '.join(attrs)})" if attrs else ")")


def format_p(p: float) -> str:
    """"< 1e-6", "= 3.2e-05", "= 0.012"."""
    if p < 1e-6:
        return "< 1e-6"
    return f"= {p:.2g}" if p >= 1e-3 else f"= {p:.1e}"


def slice_sentence(s: Slice, *, confusions: int = 2, what: str = "errors") -> str:
    """One sentence from a slice's description, e.g. "blue background (border hue
    195–255°): ship → airplane (41), 31 % errors vs 9 % elsewhere (n 150), p < 1e-6
    (BH-adjusted)"; ``what`` names the outcome ("break by severity 2")."""
    pairs = ", ".join(f"{t} → {p} ({c})" for t, p, c in s.confusions[:confusions])
    return (f"{s.description}: {pairs + ', ' if pairs else ''}{100 * s.rate:.0f} % {what} "
            f"vs {100 * s.rate_rest:.0f} % elsewhere (n {s.n}), p {format_p(s.p_adj)} "
            "(BH-adjusted)")


def typical_images(s: Slice, coords: np.ndarray, k: int = 6, *,
                   wrong_only: bool = True) -> list[int]:
    """Positions of the ≤ ``k`` slice members (its errors, by default) nearest the centroid
    of all its members in ``coords`` (N×D, e.g. standardised attributes or features)."""
    members = np.flatnonzero(s.members)
    pool = np.flatnonzero(s.wrong_members) if wrong_only else members
    if len(pool) == 0:
        return []
    centre = coords[members].mean(0)
    d = ((coords[pool] - centre) ** 2).sum(1)
    return [int(i) for i in pool[np.argsort(d, kind="stable")[:k]]]
