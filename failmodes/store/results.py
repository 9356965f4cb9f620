"""The results store: SQLite, one transaction per cell, one row per image per cell.

Tables (``_schema.SCHEMA`` is the truth):

- ``runs``: one row per invocation that wrote here (command, resolved config, versions).
- ``models``: name (unique in the store), spec (registry name or checkpoint path),
  arch, weights_hash (SHA-1 of the state dict), class names, metadata.
- ``cells``: one (model, dataset, stressor, severity-or-value, seed); ``status`` is
  ``done`` or ``failed`` (with ``error``); timing and images/s. A ``done`` cell has all
  its prediction rows; the clean cell is ``stressor='clean', severity=0``.
- ``predictions``: per image of a cell: dataset index, label, prediction, max
  probability, true-class probability, entropy (nats), top-2 margin, top-5 classes
  (JSON) and the logits (float32 blob, C values) so calibration can re-temperature.
- ``temperatures``: per model, the fitted temperature (written by calibration).

WAL mode: readers never block the writer, and a process killed mid-cell leaves the
last committed cell intact; the half-written cell simply is not there. A read-only store
(``readonly=True``) writes nothing, so it can live on read-only media.

>>> store = ResultsStore("runs/x/results.sqlite")                      # doctest: +SKIP
>>> mid = store.register_model("r18", spec="cifar_resnet18", arch="cifar_resnet18",
...                            weights_hash="abc", class_names=["a", "b"])  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._connect import StoreError, connect, describe
from ._schema import (
    ATTACKS_SCHEMA,
    ROW_FIELDS,
    SCHEMA,
    SCHEMA_VERSION,
    TEMPERATURES_SCHEMA,
    table_columns,
)
from .keys import DatasetKeyError, parse_dataset_key

__all__ = ["ROW_FIELDS", "Cell", "CellKey", "ResultsStore", "StoreError", "timestamp"]


@dataclass(frozen=True)
class CellKey:
    model: str          # model name in the store
    dataset: str        # dataset key, e.g. "cifar10:test@2000" (see keys.py)
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


def timestamp() -> str:
    """Local time to the second, as the store's ``started``/``finished`` columns hold it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


_CELL_MATCH = "model_id=? AND dataset=? AND stressor=? AND severity=? AND seed=?"
DAMAGED_HINT = "restore the file from a copy, or evaluate into a new --out"


def _guarded(method):
    """A damaged store (corrupt pages, a dropped column, bad JSON in a row) raises one
    StoreError line naming the file, wherever the damage is met."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.DatabaseError, json.JSONDecodeError) as e:
            what = "bad JSON in a row" if isinstance(e, json.JSONDecodeError) else str(e)
            raise StoreError(f"{self.path} is damaged ({what}, in {method.__name__}); "
                             f"{DAMAGED_HINT}") from None
    return run


class ResultsStore:
    """Open (creating if needed) the SQLite store at ``path``; ``readonly=True`` opens an
    existing one without writing anything (see ``_connect.connect``)."""

    def __init__(self, path: str | os.PathLike, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self.db = connect(self.path, readonly)
        try:
            self.db.execute("PRAGMA foreign_keys = ON")
            version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer failmodes (store schema "
                                 f"{version}; this one reads up to {SCHEMA_VERSION}): upgrade "
                                 "failmodes, or evaluate into a new --out")
            if not readonly:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.executescript(SCHEMA)
                if version == 0:  # new, or written before versions were kept (layout 1)
                    self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.execute("SELECT count(*) FROM cells").fetchone()
            self._check_columns()
        except StoreError:
            self.db.close()
            raise
        except sqlite3.DatabaseError as e:
            self.db.close()
            if isinstance(e, sqlite3.OperationalError) and "no such table" not in str(e):
                raise describe(self.path, e, "open") from None
            raise StoreError(f"{self.path} is not a usable results store ({e})") from None

    def _check_columns(self) -> None:
        for table, want in table_columns().items():
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in want if c not in have]
            if missing:
                raise StoreError(f"{self.path} is damaged: table {table} has no column "
                                 f"{', '.join(missing)}; {DAMAGED_HINT}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def _writing(self, doing: str):
        """One transaction; SQLite errors (disk full, locked) become one StoreError line."""
        if self.readonly:
            raise StoreError(f"cannot {doing} {self.path}: the store was opened read-only")
        try:
            with self.db:
                yield self.db
        except sqlite3.OperationalError as e:
            raise describe(self.path, e, doing) from None

    # ------------------------------------------------------------------ writing
    @_guarded
    def start_run(self, command: str, config: dict, versions: dict) -> int:
        with self._writing("record the run in") as db:
            cur = db.execute(
                "INSERT INTO runs (started, command, config_json, versions_json) VALUES (?,?,?,?)",
                (timestamp(), command, json.dumps(config, default=str), json.dumps(versions)))
        return int(cur.lastrowid)

    @_guarded
    def register_model(self, name: str, *, spec: str, arch: str, weights_hash: str,
                       class_names: list[str], meta: dict | None = None) -> int:
        """Add a model, or return the id of the same one; a name reused for different
        weights is an error (give the new model another name)."""
        row = self.db.execute("SELECT id, weights_hash FROM models WHERE name=?",
                              (name,)).fetchone()
        if row is not None:
            if row[1] != weights_hash:
                raise StoreError(f"model name {name!r} is already in {self.path} with other "
                                 "weights; choose another --name or another --out")
            return int(row[0])
        with self._writing(f"add model {name!r} to") as db:
            cur = db.execute(
                "INSERT INTO models (name, spec, arch, weights_hash, class_names_json, meta_json)"
                " VALUES (?,?,?,?,?,?)",
                (name, spec, arch, weights_hash, json.dumps(class_names), json.dumps(meta or {})))
        return int(cur.lastrowid)

    def _model_id(self, name: str) -> int:
        row = self.db.execute("SELECT id FROM models WHERE name=?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"model {name!r} is not in {self.path}")
        return int(row[0])

    def _match(self, key: CellKey) -> tuple:
        return (self._model_id(key.model), key.dataset, key.stressor, float(key.severity),
                key.seed)

    @_guarded
    def write_cell(self, key: CellKey, rows: dict[str, np.ndarray], *, started: str | None = None,
                   images_per_s: float | None = None, attack: dict | None = None) -> int:
        """Insert a finished cell and all its rows in one transaction (replacing a failed one).

        ``rows``: arrays of equal length N for ``ROW_FIELDS``, optional ``top5`` (N×5 int)
        and ``logits`` (N×C float).
        """
        n = len(rows["idx"])
        try:
            expected = parse_dataset_key(key.dataset).n
        except DatasetKeyError:
            expected = None
        if expected is not None and n != expected:
            raise StoreError(f"cell {key}: {n} rows for the {expected} images its dataset key "
                             "names; a cell is stored whole or not at all")
        match = self._match(key)
        logits = rows.get("logits")
        top5 = rows.get("top5")
        data = [
            (int(rows["idx"][i]), int(rows["label"][i]), int(rows["pred"][i]),
             float(rows["conf"][i]), float(rows["p_true"][i]), float(rows["entropy"][i]),
             float(rows["margin"][i]),
             json.dumps([int(t) for t in top5[i]]) if top5 is not None else None,
             np.asarray(logits[i], dtype=np.float32).tobytes() if logits is not None else None)
            for i in range(n)]
        with self._writing(f"write cell {key} to") as db:
            db.execute(f"DELETE FROM cells WHERE {_CELL_MATCH}", match)
            cur = db.execute(
                "INSERT INTO cells (model_id, dataset, stressor, severity, seed, status, "
                "n_images, started, finished, images_per_s) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (*match, "done", n, started or timestamp(), timestamp(), images_per_s))
            cid = int(cur.lastrowid)
            self._drop_orphans(db, cid)
            db.executemany(
                "INSERT INTO predictions (cell_id, idx, label, pred, conf, p_true, entropy, "
                f"margin, top5_json, logits) VALUES ({cid},?,?,?,?,?,?,?,?,?)", data)
            if attack is not None:
                db.execute(ATTACKS_SCHEMA)   # execute, not executescript: no implicit COMMIT
                success = attack["success_rate"]
                db.execute("INSERT INTO attack_stats VALUES (?,?,?,?)",
                           (cid, float(attack["loss"]),
                            None if success != success else float(success),
                            int(attack["n_clean_correct"])))
        return cid

    @_guarded
    def mark_failed(self, key: CellKey, error: str) -> None:
        """Record a cell that could not be computed (e.g. NaN logits), with its reason."""
        match = self._match(key)
        with self._writing(f"record failed cell {key} in") as db:
            db.execute(f"DELETE FROM cells WHERE {_CELL_MATCH}", match)
            cur = db.execute(
                "INSERT INTO cells (model_id, dataset, stressor, severity, seed, status, "
                "started, finished, error) VALUES (?,?,?,?,?,?,?,?,?)",
                (*match, "failed", timestamp(), timestamp(), error[:2000]))
            self._drop_orphans(db, int(cur.lastrowid))

    @staticmethod
    def _drop_orphans(db, cid: int) -> None:
        # Rows left by a cell deleted by hand (sqlite3's shell does not enforce the foreign
        # key) would collide with, or join, the new cell that reuses its id.
        db.execute("DELETE FROM predictions WHERE cell_id=?", (cid,))
        if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                      "name='attack_stats'").fetchone():
            db.execute("DELETE FROM attack_stats WHERE cell_id=?", (cid,))

    @_guarded
    def has_done_cells(self, model: str) -> bool:
        """Whether ``model`` has at least one finished cell."""
        return self.db.execute("SELECT 1 FROM cells c JOIN models m ON m.id=c.model_id WHERE "
                               "m.name=? AND c.status='done' LIMIT 1", (model,)).fetchone() \
            is not None

    @_guarded
    def drop_model(self, model: str) -> None:
        """Remove ``model`` and its cells (an attempt that finished no cell, being replaced)."""
        mid = self._model_id(model)
        with self._writing(f"remove model {model!r} from") as db:
            db.execute("DELETE FROM cells WHERE model_id=?", (mid,))
            db.execute("DELETE FROM models WHERE id=?", (mid,))

    @_guarded
    def save_temperature(self, model: str, temperature: float | None, fitted_on: str = "",
                         nll_before: float | None = None, nll_after: float | None = None) -> None:
        """Record the temperature of ``model`` (``temperature=None`` removes it)."""
        mid = self._model_id(model)
        with self._writing(f"save the temperature of {model!r} in") as db:
            db.executescript(TEMPERATURES_SCHEMA)
            db.execute("DELETE FROM temperatures WHERE model_id=?", (mid,))
            if temperature is not None:
                db.execute("INSERT INTO temperatures VALUES (?,?,?,?,?)",
                           (mid, temperature, fitted_on, nll_before, nll_after))

    # ------------------------------------------------------------------ reading
    @_guarded
    def has_cell(self, key: CellKey) -> bool:
        """True when the cell is fully stored (status done, every image's row present)."""
        row = self.db.execute(
            "SELECT c.n_images, (SELECT count(*) FROM predictions p WHERE p.cell_id=c.id) "
            "FROM cells c JOIN models m ON m.id=c.model_id WHERE m.name=? AND "
            "c.dataset=? AND c.stressor=? AND c.severity=? AND c.seed=? AND c.status='done'",
            (key.model, key.dataset, key.stressor, float(key.severity), key.seed)).fetchone()
        # A cell missing rows (edited by hand) is not done: the evaluation computes it again.
        return row is not None and row[0] == row[1]

    @_guarded
    def models(self) -> list[dict]:
        out = []
        for mid, name, spec, arch, wh, cn, meta in self.db.execute(
                "SELECT id, name, spec, arch, weights_hash, class_names_json, meta_json "
                "FROM models ORDER BY id"):
            out.append({"id": mid, "name": name, "spec": spec, "arch": arch, "weights_hash": wh,
                        "class_names": json.loads(cn), "meta": json.loads(meta or "{}")})
        return out

    @_guarded
    def class_names(self, model: str) -> list[str]:
        for m in self.models():
            if m["name"] == model:
                return m["class_names"]
        raise StoreError(f"model {model!r} is not in {self.path}")

    @_guarded
    def runs(self) -> list[dict]:
        """The ``runs`` table, oldest first: id, started, command, config, versions (JSON text)."""
        keys = ("id", "started", "command", "config", "versions")
        return [dict(zip(keys, r, strict=True)) for r in self.db.execute(
            "SELECT id, started, command, config_json, versions_json FROM runs ORDER BY id")]

    @_guarded
    def latest_config(self) -> dict | None:
        """The resolved config of the newest run recorded here (None when there is none)."""
        row = self.db.execute("SELECT config_json FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else json.loads(row[0])

    @_guarded
    def fingerprint(self) -> list:
        """JSON-able; changes whenever a cell is added or replaced or a model is added."""
        cells = self.db.execute("SELECT count(*), max(id), max(finished) FROM cells").fetchone()
        models = self.db.execute("SELECT group_concat(name || weights_hash) FROM models").fetchone()
        return [list(cells), list(models)]

    @_guarded
    def correctness(self) -> np.ndarray:
        """Every prediction of the done cells as int64 rows (cell id, image index, 1 when
        right), ordered by cell then index: one query for a whole store's per-image
        correctness (the regime resampling reads every cell at once)."""
        rows = self.db.execute("SELECT p.cell_id, p.idx, p.pred = p.label FROM predictions p "
                               "JOIN cells c ON c.id = p.cell_id WHERE c.status='done' "
                               "ORDER BY p.cell_id, p.idx").fetchall()
        return np.array(rows, dtype=np.int64).reshape(-1, 3)

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

    @_guarded
    def predictions(self, cell: Cell | int, logits: bool = False) -> dict[str, np.ndarray]:
        """Per-image arrays of one cell, sorted by dataset index: idx, label, pred, conf,
        p_true, entropy, margin (and ``logits`` N×C float32 when asked and stored)."""
        cid = cell.id if isinstance(cell, Cell) else int(cell)
        cols = ", ".join(ROW_FIELDS) + (", logits" if logits else "")
        rows = self.db.execute(f"SELECT {cols} FROM predictions WHERE cell_id=? ORDER BY idx",
                               (cid,)).fetchall()
        want = self.db.execute("SELECT n_images FROM cells WHERE id=?", (cid,)).fetchone()
        if want is not None and want[0] is not None and want[0] != len(rows):
            raise StoreError(f"{self.path}: cell {cid} holds {len(rows)} rows of its "
                             f"{want[0]} images (edited by hand?); rerun the same evaluation "
                             "to compute it again")
        out = {}
        for j, f in enumerate(ROW_FIELDS):
            dtype = np.int64 if f in ("idx", "label", "pred") else np.float64
            out[f] = np.asarray([r[j] for r in rows], dtype=dtype)
        if logits:
            blobs = [r[len(ROW_FIELDS)] for r in rows]
            # None when a row has no stored logits: callers check before using them.
            out["logits"] = (np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs])  # type: ignore[assignment]
                             if blobs and all(b is not None for b in blobs) else None)
        return out

    @_guarded
    def attack_stats(self) -> list[dict]:
        """One dict per done attack cell: model, dataset, stressor, severity, seed, loss
        (mean cross-entropy at the adversarial images), success_rate, n_clean_correct."""
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                               "name='attack_stats'").fetchone():
            return []
        keys = ("model", "dataset", "stressor", "severity", "seed", "loss", "success_rate",
                "n_clean_correct")
        q = ("SELECT m.name, c.dataset, c.stressor, c.severity, c.seed, a.loss, "
             "a.success_rate, a.n_clean_correct FROM attack_stats a JOIN cells c ON "
             "c.id = a.cell_id JOIN models m ON m.id = c.model_id WHERE c.status = 'done' "
             "ORDER BY m.id, c.stressor, c.severity")
        return [dict(zip(keys, r, strict=True)) for r in self.db.execute(q)]

    @_guarded
    def top5(self, cell: Cell | int) -> np.ndarray:
        cid = cell.id if isinstance(cell, Cell) else int(cell)
        rows = self.db.execute("SELECT top5_json FROM predictions WHERE cell_id=? ORDER BY idx",
                               (cid,)).fetchall()
        return np.asarray([json.loads(r[0]) if r[0] else [] for r in rows])

    @_guarded
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
        rows = self.db.execute(q, (model,) if model else ())
        return [dict(zip(keys, r, strict=True)) for r in rows]

    @_guarded
    def per_class_accuracy(self) -> list[dict]:
        """Accuracy of every class in every done cell (one pass over the predictions):
        model, dataset, stressor, severity, seed, class (name), n, accuracy."""
        q = ("SELECT m.name, c.dataset, c.stressor, c.severity, c.seed, p.label, count(*), "
             "avg(p.pred = p.label) FROM cells c JOIN models m ON m.id = c.model_id "
             "JOIN predictions p ON p.cell_id = c.id WHERE c.status = 'done' "
             "GROUP BY c.id, p.label ORDER BY m.id, c.dataset, c.stressor, c.severity, p.label")
        names = {m["name"]: m["class_names"] for m in self.models()}
        out = []
        for model, dataset, stressor, sev, seed, label, n, acc in self.db.execute(q):
            cls = names[model][label] if label < len(names[model]) else str(label)
            out.append({"model": model, "dataset": dataset, "stressor": stressor,
                        "severity": float(sev), "seed": seed, "class": cls, "n": n,
                        "accuracy": float(acc)})
        return out

    @_guarded
    def temperatures(self) -> dict[str, dict]:
        """``{model: {temperature, fitted_on, nll_before, nll_after}}``; {} when never fitted."""
        has = self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                              "name='temperatures'").fetchone()
        if not has:
            return {}
        rows = self.db.execute("SELECT m.name, t.temperature, t.fitted_on, t.nll_before, "
                               "t.nll_after FROM temperatures t JOIN models m ON m.id=t.model_id")
        return {r[0]: {"temperature": r[1], "fitted_on": r[2], "nll_before": r[3],
                       "nll_after": r[4]} for r in rows}
