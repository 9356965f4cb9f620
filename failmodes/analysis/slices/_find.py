"""The slice search: every attribute bin, every pair of bins of two different attributes and
every cluster of the model's features is a slice; each is tested for an error rate above the
rest of its cell with Fisher's exact test (one-sided), and the family is corrected with
Benjamini-Hochberg (FDR ≤ q; under the complete null that is also the chance of any
discovery).

Counting is one matrix product per cell: with M the N×S membership matrix of the single
conditions and w the cell's wrong-vector, pair sizes are MᵀM and pair errors Mᵀdiag(w)M.

>>> search = find_slices(conds, wrong[None], labels=y, preds=p, class_names=names)  # doctest: +SKIP
>>> slice_sentence(search.top(0)[0])                                              # doctest: +SKIP
'blue background (border hue 195–255°): ship → airplane (41), 31 % errors vs 9 % ...'
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from statistics import NormalDist

import numpy as np
import scipy.stats
import torch

from ._attributes import Condition
from ._describe import describe_cluster
from ._errors import SliceError

__all__ = ["Slice", "SliceError", "SliceSearch", "bh_adjust", "cluster_conditions",
           "find_slices", "fisher_greater", "kmeans", "wilson"]

CLUSTER = "cluster"


def fisher_greater(k, n, k_all: int, n_all: int) -> np.ndarray:
    """One-sided Fisher exact p (slice error rate greater than the rest's): P(X ≥ k) for X
    hypergeometric, ``n`` images drawn from ``n_all`` of which ``k_all`` are wrong."""
    k, n = np.asarray(k), np.asarray(n)
    return scipy.stats.hypergeom.sf(k - 1, n_all, k_all, n)


def wilson(k, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of k/n (arrays; n > 0)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    z = NormalDist().inv_cdf(0.5 + level / 2)      # scipy's ppf costs 0.3 ms a call
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def bh_adjust(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (reject where ≤ q), any shape."""
    p = np.asarray(p, float)
    flat = p.ravel()
    m = len(flat)
    if m == 0:
        return p.copy()
    order = np.argsort(flat)
    adj = flat[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(adj[::-1])[::-1].clip(max=1.0)
    out = np.empty(m)
    out[order] = adj
    return out.reshape(p.shape)


def kmeans(x, k: int, *, seed: int = 0, n_init: int = 3, iters: int = 50) -> np.ndarray:
    """Cluster labels (int64 N) of the rows of ``x`` (N×D): k-means++ seeding from a
    ``torch.Generator(seed)``, Lloyd iterations, best of ``n_init`` by inertia."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    n = len(x)
    if x.ndim != 2 or n < k or k < 2:
        raise SliceError(f"k-means needs at least k ≥ 2 rows for k clusters; got {n} rows "
                         f"for {k} clusters")
    g = torch.Generator().manual_seed(seed)
    best, best_inertia = None, math.inf
    for _ in range(n_init):
        centres = x[torch.randint(n, (1,), generator=g)]
        d2 = torch.cdist(x, centres).square().min(1).values
        for _ in range(1, k):
            w = d2 if d2.sum() > 0 else torch.ones_like(d2)
            centres = torch.cat([centres, x[torch.multinomial(w, 1, generator=g)]])
            d2 = torch.minimum(d2, (x - centres[-1]).square().sum(1))
        for _ in range(iters):
            lab = torch.cdist(x, centres).argmin(1)
            sums = torch.zeros_like(centres).index_add_(0, lab, x)
            cnt = torch.bincount(lab, minlength=k).unsqueeze(1)
            new = torch.where(cnt > 0, sums / cnt.clamp_min(1), centres)
            if torch.equal(new, centres):
                break
            centres = new
        dist = torch.cdist(x, centres)
        lab = dist.argmin(1)
        inertia = float(dist.min(1).values.square().sum())
        if inertia < best_inertia:
            best, best_inertia = lab, inertia
    assert best is not None
    return best.numpy().astype(np.int64)


def cluster_conditions(features, *, k: int = 8, seed: int = 0) -> list[Condition]:
    """The k-means clusters of ``features`` (N×D, e.g. penultimate-layer activations) as
    conditions ("cluster", "c<j>"); ``find_slices`` describes them by their attributes."""
    lab = kmeans(features, k, seed=seed)
    return [Condition((CLUSTER, f"c{j}"), lab == j, f"cluster {j}") for j in range(k)
            if (lab == j).any()]


@dataclass
class Slice:
    """One tested slice of one cell. ``conditions``: its keys, e.g. (("background", "blue"),);
    ``members`` bool N; ``rate`` / ``rate_rest`` error rates inside / outside; ``ci`` the
    Wilson 95 % interval of ``rate``; ``p`` one-sided Fisher, ``p_adj`` BH-adjusted."""

    conditions: tuple[tuple[str, str], ...]
    description: str
    members: np.ndarray
    n: int
    n_wrong: int
    rate: float
    rate_rest: float
    ci: tuple[float, float]
    p: float
    p_adj: float
    significant: bool
    _wrong: np.ndarray = field(repr=False)
    _labels: np.ndarray = field(repr=False)
    _preds: np.ndarray = field(repr=False)
    _names: list[str] = field(repr=False)

    @cached_property
    def confusions(self) -> list[tuple[str, str, int]]:
        """(true class, predicted class, count) of the slice's errors, most frequent first."""
        m = self.members & self._wrong
        pairs = Counter(zip(self._labels[m].tolist(), self._preds[m].tolist(), strict=True))
        return [(self._names[t], self._names[p], c)
                for (t, p), c in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))]

    @property
    def wrong_members(self) -> np.ndarray:
        return self.members & self._wrong


@dataclass
class SliceSearch:
    """Every slice tested over C cells: ``n`` (T) sizes, ``k`` (C×T) errors, ``p`` and
    ``p_adj`` (C×T). ``top(c)`` the significant ones of cell c, non-redundant, best first."""

    conditions: list[Condition]
    pairs: np.ndarray                 # T×2 indices into conditions (-1: a single)
    descriptions: list[str]
    n: np.ndarray
    k: np.ndarray
    p: np.ndarray
    p_adj: np.ndarray
    q: float
    wrong: np.ndarray                 # C×N
    labels: np.ndarray
    preds: np.ndarray                 # C×N
    class_names: list[str]

    @property
    def n_tested_per_cell(self) -> int:
        return int(self.n.shape[0])

    def members(self, t: int) -> np.ndarray:
        i, j = self.pairs[t]
        m = self.conditions[i].mask
        return m & self.conditions[j].mask if j >= 0 else m

    def slice(self, c: int, t: int) -> Slice:
        m = self.members(t)
        n, k = int(self.n[t]), int(self.k[c, t])
        n_all, k_all = self.wrong.shape[1], int(self.wrong[c].sum())
        lo, hi = wilson(k, n)
        i, j = self.pairs[t]
        keys = (self.conditions[i].key,) + ((self.conditions[j].key,) if j >= 0 else ())
        return Slice(keys, self.descriptions[t], m, n, k, k / n,
                     (k_all - k) / max(1, n_all - n), (float(lo), float(hi)),
                     float(self.p[c, t]), float(self.p_adj[c, t]),
                     bool(self.p_adj[c, t] <= self.q), self.wrong[c], self.labels,
                     self.preds[c], self.class_names)

    def any_significant(self, c: int) -> bool:
        return bool((self.p_adj[c] <= self.q).any())

    def all_tests(self, c: int) -> list[Slice]:
        """Every slice tested in cell ``c``, smallest p first."""
        return [self.slice(c, int(t)) for t in self._order(c)]

    def _order(self, c: int) -> np.ndarray:
        # Smallest p first; among equal p the larger error rate, then the simpler slice.
        rate = self.k[c] / self.n
        return np.lexsort((self.pairs[:, 1] >= 0, -rate, self.p[c]))

    def top(self, c: int, n: int = 5, *, overlap: float = 0.5) -> list[Slice]:
        """Up to ``n`` significant slices of cell ``c``, smallest p first, skipping one whose
        errors are mostly (≥ ``overlap``) errors of slices already listed: a pair inside
        "blue background" that fails for the same images says nothing new."""
        out: list[Slice] = []
        covered = np.zeros(self.wrong.shape[1], bool)
        for t in self._order(c):
            if self.p_adj[c, t] > self.q or len(out) >= n:
                break
            s = self.slice(c, int(t))
            w = s.wrong_members
            if out and (w & covered).sum() >= overlap * max(1, w.sum()):
                continue
            out.append(s)
            covered |= w
        return out


def _pairs(conditions: list[Condition], max_order: int) -> np.ndarray:
    s = len(conditions)
    singles = np.stack([np.arange(s), np.full(s, -1)], 1)
    if max_order < 2:
        return singles
    attr = [c.key[0] for c in conditions]
    pairs = [(i, j) for i in range(s) for j in range(i + 1, s)
             if attr[i] != attr[j] and CLUSTER not in (attr[i], attr[j])]
    return np.concatenate([singles, np.asarray(pairs, dtype=np.int64).reshape(-1, 2)])


def find_slices(conditions: list[Condition], wrong, *, labels, preds, class_names: list[str],
                q: float = 0.05, max_order: int = 2, min_size: int | None = None,
                per_cell_family: bool = False) -> SliceSearch:
    """Test every slice (each condition; with ``max_order=2`` each pair of conditions on two
    different attributes, clusters alone) in each of C cells of the same N images.

    ``wrong``: bool C×N (an image's error in each cell); ``labels`` N; ``preds`` N or C×N.
    Slices with fewer than ``min_size`` images (default max(10, 1 % of N)), or leaving fewer
    outside, are not tested. BH over every test of every cell (``per_cell_family``: per
    cell). Clusters are described by the attribute bins most over-represented in them.
    """
    wrong = np.atleast_2d(np.asarray(wrong, dtype=bool))
    c_cells, n_img = wrong.shape
    labels = np.asarray(labels)
    preds = np.asarray(preds)
    preds = np.broadcast_to(preds, wrong.shape) if preds.ndim == 1 else preds
    if labels.shape != (n_img,) or preds.shape != wrong.shape:
        raise SliceError(f"labels must have N = {n_img} entries and preds N or C×N, got "
                         f"{labels.shape} and {preds.shape}")
    if not conditions:
        raise SliceError("no conditions to test: no attribute varies across these images")
    for cond in conditions:
        if cond.mask.shape != (n_img,):
            raise SliceError(f"condition {cond.key} has {cond.mask.shape} entries, not "
                             f"{n_img}")
    if not 0 < q < 1:
        raise SliceError(f"q must be in (0, 1), got {q!r}")
    min_size = max(10, math.ceil(0.01 * n_img)) if min_size is None else int(min_size)
    pairs = _pairs(conditions, max_order)
    mm = torch.as_tensor(np.stack([c.mask for c in conditions], 1), dtype=torch.float32)
    gram = (mm.T @ mm).numpy()
    diag = np.diag(gram)
    single = pairs[:, 1] < 0
    j = np.where(single, pairs[:, 0], pairs[:, 1])
    n = np.where(single, diag[pairs[:, 0]], gram[pairs[:, 0], j]).astype(np.int64)
    keep = (n >= min_size) & (n_img - n >= min_size)
    pairs, n, j = pairs[keep], n[keep], j[keep]
    w = torch.as_tensor(wrong, dtype=torch.float32)
    k = np.empty((c_cells, len(pairs)), np.int64)
    for c in range(c_cells):
        g = ((mm * w[c].unsqueeze(1)).T @ mm).numpy()
        k[c] = np.rint(np.where(pairs[:, 1] < 0, np.diag(g)[pairs[:, 0]],
                                g[pairs[:, 0], j])).astype(np.int64)
    k_all = wrong.sum(1, keepdims=True)
    p = fisher_greater(k, n[None, :], k_all, n_img)
    p_adj = (np.stack([bh_adjust(row) for row in p]) if per_cell_family else bh_adjust(p))
    attr_conds = [cnd for cnd in conditions if cnd.key[0] != CLUSTER]
    texts = [(describe_cluster(cnd.mask, cnd.text, attr_conds, labels, class_names)
              if cnd.key[0] == CLUSTER else cnd.text) for cnd in conditions]
    desc = [texts[a] if b < 0 else f"{texts[a]} & {texts[b]}" for a, b in pairs]
    return SliceSearch(conditions, pairs, desc, n, k, p, p_adj, q, wrong, labels, preds,
                       list(class_names))
