"""The results store: SQLite, one transaction per cell, one row per image per cell.

Schema (``SCHEMA`` below is the truth):

- ``runs``: one row per invocation that wrote here (command, resolved config, versions).
- ``models``: name (unique in the store), spec (registry name or checkpoint path),
  arch, weights_hash (SHA-1 of the state dict), class names, metadata.
- ``cells``: one (model, dataset, stressor, severity-or-value, seed); ``status`` is
  ``done`` or ``failed`` (with ``error``); timing and images/s. A ``done`` cell has all
  its prediction rows; the clean cell is ``stressor='clean', severity=0``.
- ``predictions``: per image of a cell: dataset index, label, prediction, max
  probability, true-class probability, entropy (nats), top-2 margin, top-5 classes
  (JSON) and the logits (float32 blob, C values) so calibration can re-temperature.

WAL mode: readers never block the writer, and a process killed mid-cell leaves the
last committed cell intact; the half-written cell simply is not there.

>>> store = ResultsStore("runs/x/results.sqlite")
>>> mid = store.register_model("r18", spec="cifar_resnet18", arch="cifar_resnet18",
...                            weights_hash="abc", class_names=["a", "b"])
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FailmodesError


SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    command TEXT,
    config_json TEXT,
    versions_json TEXT
);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    arch TEXT,
    weights_hash TEXT,
    class_names_json TEXT NOT NULL,
    meta_json TEXT
);
CREATE TABLE IF NOT EXISTS cells (
    id INTEGER PRIMARY KEY,
    model_id INTEGER NOT NULL REFERENCES models(id),
    dataset TEXT NOT NULL,
    stressor TEXT NOT NULL,
    severity REAL NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    n_images INTEGER,
    started TEXT,
    finished TEXT,
    images_per_s REAL,
    error TEXT,
    UNIQUE (model_id, dataset, stressor, severity, seed)
);
CREATE TABLE IF NOT EXISTS predictions (
    cell_id INTEGER NOT NULL REFERENCES cells(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    label INTEGER NOT NULL,
    pred INTEGER NOT NULL,
    conf REAL NOT NULL,
    p_true REAL NOT NULL,
    entropy REAL NOT NULL,
    margin REAL NOT NULL,
    top5_json TEXT,
    logits BLOB,
    PRIMARY KEY (cell_id, idx)
) WITHOUT ROWID;
"""

ROW_FIELDS = ("idx", "label", "pred", "conf", "p_true", "entropy", "margin")


class StoreError(RuntimeError, FailmodesError):
    """The store file is unusable (corrupt, not a failmodes store, disk full)."""


@dataclass(frozen=True)
class CellKey:
    model: str          # model name in the store
    dataset: str        # dataset spec, e.g. "cifar10:test" (subset size included when used)
    stressor: str       # registry name, or "clean"
    severity: float     # severity 1..5 (fractional allowed) or the sweep's natural value
    seed: int = 0


@dataclass(frozen=True)
class Cell:
    id: int
    model: str
    dataset: str
    stressor: str
    severity: float
    seed: int
    status: str
    n_images: int | None
    images_per_s: float | None
    error: str | None

    @property
    def key(self) -> CellKey:
        return CellKey(self.model, self.dataset, self.stressor, self.severity, self.seed)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


class ResultsStore:
    """Open (creating if needed) the SQLite store at ``path``."""

    def __init__(self, path: str | os.PathLike, readonly: bool = False):
        self.path = Path(path)
        if readonly and not self.path.exists():
            raise StoreError(f"no results store at {self.path}; run `failmodes evaluate` first")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"file:{self.path}?mode=ro" if readonly else str(self.path)
        try:
            self.db = sqlite3.connect(uri, uri=readonly, timeout=60)
            self.db.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.executescript(SCHEMA)
            self.db.execute("SELECT count(*) FROM cells").fetchone()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a usable results store ({e})") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ writing
    def start_run(self, command: str, config: dict, versions: dict) -> int:
        with self.db:
            cur = self.db.execute(
                "INSERT INTO runs (started, command, config_json, versions_json) VALUES (?,?,?,?)",
                (_now(), command, json.dumps(config, default=str), json.dumps(versions)))
        return int(cur.lastrowid)

    def register_model(self, name: str, *, spec: str, arch: str, weights_hash: str,
                       class_names: list[str], meta: dict | None = None) -> int:
        """Add a model, or return the id of the same one; a name reused for different
        weights is an error (give the new model another name)."""
        row = self.db.execute("SELECT id, weights_hash FROM models WHERE name=?", (name,)).fetchone()
        if row is not None:
            if row[1] != weights_hash:
                raise StoreError(f"model name {name!r} is already in {self.path} with other "
                                 "weights; choose another --name or another --out")
            return int(row[0])
        with self.db:
            cur = self.db.execute(
                "INSERT INTO models (name, spec, arch, weights_hash, class_names_json, meta_json)"
                " VALUES (?,?,?,?,?,?)",
                (name, spec, arch, weights_hash, json.dumps(class_names), json.dumps(meta or {})))
        return int(cur.lastrowid)

    def _model_id(self, name: str) -> int:
        row = self.db.execute("SELECT id FROM models WHERE name=?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"model {name!r} is not in {self.path}")
        return int(row[0])

    def write_cell(self, key: CellKey, rows: dict[str, np.ndarray], *, started: str | None = None,
                   images_per_s: float | None = None) -> int:
        """Insert a finished cell and all its rows in one transaction (replacing a failed one).

        ``rows``: arrays of equal length N for ``ROW_FIELDS``, optional ``top5`` (N×5 int)
        and ``logits`` (N×C float).
        """
        n = len(rows["idx"])
        mid = self._model_id(key.model)
        logits = rows.get("logits")
        top5 = rows.get("top5")
        data = [
            (int(rows["idx"][i]), int(rows["label"][i]), int(rows["pred"][i]),
             float(rows["conf"][i]), float(rows["p_true"][i]), float(rows["entropy"][i]),
             float(rows["margin"][i]),
             json.dumps([int(t) for t in top5[i]]) if top5 is not None else None,
             np.asarray(logits[i], dtype=np.float32).tobytes() if logits is not None else None)
            for i in range(n)]
        try:
            with self.db:
                self.db.execute("DELETE FROM cells WHERE model_id=? AND dataset=? AND stressor=? "
                                "AND severity=? AND seed=?", (mid, key.dataset, key.stressor,
                                                              float(key.severity), key.seed))
                cur = self.db.execute(
                    "INSERT INTO cells (model_id, dataset, stressor, severity, seed, status, "
                    "n_images, started, finished, images_per_s) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (mid, key.dataset, key.stressor, float(key.severity), key.seed, "done", n,
                     started or _now(), _now(), images_per_s))
                cid = int(cur.lastrowid)
                self.db.executemany(
                    "INSERT INTO predictions (cell_id, idx, label, pred, conf, p_true, entropy, "
                    "margin, top5_json, logits) VALUES (%d,?,?,?,?,?,?,?,?,?)" % cid, data)
        except sqlite3.OperationalError as e:  # disk full, locked past the timeout
            raise StoreError(f"cannot write cell {key} to {self.path}: {e}") from None
        return cid

    def mark_failed(self, key: CellKey, error: str) -> None:
        """Record a cell that could not be computed (e.g. NaN logits), with its reason."""
        mid = self._model_id(key.model)
        with self.db:
            self.db.execute("DELETE FROM cells WHERE model_id=? AND dataset=? AND stressor=? "
                            "AND severity=? AND seed=?", (mid, key.dataset, key.stressor,
                                                          float(key.severity), key.seed))
            self.db.execute(
                "INSERT INTO cells (model_id, dataset, stressor, severity, seed, status, "
                "started, finished, error) VALUES (?,?,?,?,?,?,?,?,?)",
                (mid, key.dataset, key.stressor, float(key.severity), key.seed, "failed",
                 _now(), _now(), error[:2000]))

    # ------------------------------------------------------------------ reading
    def has_cell(self, key: CellKey) -> bool:
        """True when the cell is fully stored (status done)."""
        row = self.db.execute(
            "SELECT 1 FROM cells c JOIN models m ON m.id=c.model_id WHERE m.name=? AND "
            "c.dataset=? AND c.stressor=? AND c.severity=? AND c.seed=? AND c.status='done'",
            (key.model, key.dataset, key.stressor, float(key.severity), key.seed)).fetchone()
        return row is not None

    def models(self) -> list[dict]:
        out = []
        for mid, name, spec, arch, wh, cn, meta in self.db.execute(
                "SELECT id, name, spec, arch, weights_hash, class_names_json, meta_json "
                "FROM models ORDER BY id"):
            out.append({"id": mid, "name": name, "spec": spec, "arch": arch, "weights_hash": wh,
                        "class_names": json.loads(cn), "meta": json.loads(meta or "{}")})
        return out

    def class_names(self, model: str) -> list[str]:
        for m in self.models():
            if m["name"] == model:
                return m["class_names"]
        raise StoreError(f"model {model!r} is not in {self.path}")

    def cells(self, model: str | None = None, dataset: str | None = None,
              stressor: str | None = None, status: str | None = "done") -> list[Cell]:
        """Cells matching the filters (None = any), ordered by model, stressor, severity."""
        q = ("SELECT c.id, m.name, c.dataset, c.stressor, c.severity, c.seed, c.status, "
             "c.n_images, c.images_per_s, c.error FROM cells c JOIN models m ON m.id=c.model_id "
             "WHERE 1=1")
        args: list = []
        for col, val in (("m.name", model), ("c.dataset", dataset), ("c.stressor", stressor),
                         ("c.status", status)):
            if val is not None:
                q += f" AND {col}=?"
                args.append(val)
        q += " ORDER BY m.id, c.dataset, c.stressor, c.severity, c.seed"
        return [Cell(*r) for r in self.db.execute(q, args)]

    def predictions(self, cell: Cell | int, logits: bool = False) -> dict[str, np.ndarray]:
        """Per-image arrays of one cell, sorted by dataset index: idx, label, pred, conf,
        p_true, entropy, margin (and ``logits`` N×C float32 when asked and stored)."""
        cid = cell.id if isinstance(cell, Cell) else int(cell)
        cols = ", ".join(ROW_FIELDS) + (", logits" if logits else "")
        rows = self.db.execute(f"SELECT {cols} FROM predictions WHERE cell_id=? ORDER BY idx",
                               (cid,)).fetchall()
        out = {}
        for j, f in enumerate(ROW_FIELDS):
            dtype = np.int64 if f in ("idx", "label", "pred") else np.float64
            out[f] = np.asarray([r[j] for r in rows], dtype=dtype)
        if logits:
            blobs = [r[len(ROW_FIELDS)] for r in rows]
            out["logits"] = (np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs])
                             if blobs and all(b is not None for b in blobs) else None)
        return out

    def top5(self, cell: Cell | int) -> np.ndarray:
        cid = cell.id if isinstance(cell, Cell) else int(cell)
        rows = self.db.execute("SELECT top5_json FROM predictions WHERE cell_id=? ORDER BY idx",
                               (cid,)).fetchall()
        return np.asarray([json.loads(r[0]) if r[0] else [] for r in rows])

    def accuracy_table(self, model: str | None = None) -> list[dict]:
        """One dict per done cell: model, dataset, stressor, severity, seed, n, accuracy,
        mean confidence, mean true-class probability."""
        q = ("SELECT m.name, c.dataset, c.stressor, c.severity, c.seed, count(*), "
             "avg(p.pred = p.label), avg(p.conf), avg(p.p_true) FROM cells c "
             "JOIN models m ON m.id=c.model_id JOIN predictions p ON p.cell_id=c.id "
             "WHERE c.status='done'" + (" AND m.name=?" if model else "") +
             " GROUP BY c.id ORDER BY m.id, c.dataset, c.stressor, c.severity")
        keys = ("model", "dataset", "stressor", "severity", "seed", "n", "accuracy",
                "mean_conf", "mean_p_true")
        return [dict(zip(keys, r)) for r in self.db.execute(q, (model,) if model else ())]


def per_image_rows(logits, labels, indices) -> dict[str, np.ndarray]:
    """The per-image fields of the store from logits (torch N×C), labels and indices (N).

    Entropy in nats of the softmax; margin = top-1 minus top-2 probability.
    """
    import torch
    logits = logits.detach().float()
    probs = torch.softmax(logits, dim=1)
    k = min(5, probs.shape[1])
    top = probs.topk(k, dim=1)
    labels = torch.as_tensor(labels, device=probs.device)
    p_true = probs.gather(1, labels.view(-1, 1)).squeeze(1)
    ent = -(probs * torch.log(probs.clamp_min(1e-12))).sum(1)
    margin = top.values[:, 0] - (top.values[:, 1] if k > 1 else 0.0)
    cpu = lambda t: t.cpu().numpy()  # noqa: E731
    return {"idx": cpu(torch.as_tensor(indices)), "label": cpu(labels), "pred": cpu(top.indices[:, 0]),
            "conf": cpu(top.values[:, 0]), "p_true": cpu(p_true), "entropy": cpu(ent),
            "margin": cpu(margin), "top5": cpu(top.indices), "logits": cpu(logits)}
