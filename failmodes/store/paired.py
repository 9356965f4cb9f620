"""Paired per-image differences between two models, possibly in two stores (``compare``).

Both stores are attached read-only to one in-memory connection; a cell of A pairs with the
cell of B of the same dataset, stressor, severity and seed, image by image (dataset
index). Per image and cell, d = correct_B − correct_A ∈ {−1, 0, 1}.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from ._connect import StoreError, describe, readonly_uri

_D = "((pb.pred = pb.label) - (pa.pred = pa.label))"
_JOIN = """
    FROM a.cells ca JOIN a.models ma ON ma.id = ca.model_id
    JOIN b.cells cb ON cb.dataset = ca.dataset AND cb.stressor = ca.stressor
         AND cb.severity = ca.severity AND cb.seed = ca.seed
    JOIN b.models mb ON mb.id = cb.model_id
    JOIN a.predictions pa ON pa.cell_id = ca.id
    JOIN b.predictions pb ON pb.cell_id = cb.id AND pb.idx = pa.idx
    WHERE ma.name = ? AND mb.name = ? AND ca.status = 'done' AND cb.status = 'done'
          AND (? IS NULL OR ca.dataset = ?)"""
_PER_CELL = (f"SELECT ca.stressor, ca.severity, count(*), sum({_D}), sum({_D} * {_D}) {_JOIN} "
             "GROUP BY ca.stressor, ca.severity")
# Image-clustered: d is first averaged over an image's severities (severity > 0).
_PER_STRESSOR = ("SELECT stressor, count(*), sum(di), sum(di * di) FROM ("
                 f"SELECT ca.stressor AS stressor, avg({_D}) AS di {_JOIN} AND ca.severity > 0 "
                 "GROUP BY ca.stressor, pa.idx) GROUP BY stressor")


# Per image (integer severities 1–5 only: the benchmark levels), its mean d over them:
# the unit of the paired tests, so an image counts once per corruption.
_PER_IMAGE = (f"SELECT ca.stressor, pa.idx, avg({_D}) {_JOIN} "
              "AND ca.severity IN (1, 2, 3, 4, 5) GROUP BY ca.stressor, pa.idx "
              "ORDER BY ca.stressor, pa.idx")
# Per cell: n, Σd and the two discordant counts (B only right, A only right) for McNemar.
_DISCORDANT = (f"SELECT ca.stressor, ca.severity, count(*), sum({_D}), "
               f"sum(pb.pred = pb.label AND pa.pred != pa.label), "
               f"sum(pa.pred = pa.label AND pb.pred != pb.label) {_JOIN} "
               "GROUP BY ca.stressor, ca.severity")
_QUERIES = {"cell": _PER_CELL, "stressor": _PER_STRESSOR, "image": _PER_IMAGE,
            "discordant": _DISCORDANT}


def paired_sums(store_a: str | Path, model_a: str, store_b: str | Path, model_b: str,
                dataset: str | None = None, *, per: str = "stressor") -> list[tuple]:
    """Sums of the paired differences over the cells both stores hold (of ``dataset``
    only, when given). ``per="cell"``: rows (stressor, severity, n, Σd, Σd²) over every
    shared cell, clean included; ``per="stressor"``: rows (stressor, n images, Σd̄, Σd̄²)
    with d̄ an image's mean d over the stressor's severities > 0; ``per="image"``: rows
    (stressor, image index, d̄) with d̄ over the integer severities 1–5;
    ``per="discordant"``: rows (stressor, severity, n, Σd, B-only-right, A-only-right)."""
    if per not in _QUERIES:
        raise ValueError(f"per must be one of {', '.join(_QUERIES)}, got {per!r}")
    con = sqlite3.connect("file::memory:", uri=True)
    try:
        for alias, p in (("a", Path(store_a)), ("b", Path(store_b))):
            try:
                con.execute(f"ATTACH DATABASE ? AS {alias}", (readonly_uri(p),))
            except sqlite3.Error as e:
                raise describe(p, e, "open") from None
        try:
            return con.execute(_QUERIES[per], (model_a, model_b, dataset, dataset)).fetchall()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot compare {store_a} with {store_b}: {e}") from None
    finally:
        con.close()
