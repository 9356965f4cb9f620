"""The failure explorer's embedded data: every per-image row of the main dataset, packed
into typed arrays (base64), and thumbnails as one sprite sheet per stressor.

The page's JavaScript (``templates/explorer.js``) filters and sorts these rows in the
browser; nothing is fetched. Layout of ``ExplorerData.payload`` (JSON):

- ``classes``, ``models``, ``stressors`` (``{name, family, benchmark}``), ``n`` images;
- ``idx``: Int32[n] dataset indices (ascending), ``label``: Uint16[n];
- ``cells``: ``[model, stressor, severity]`` per cell (indices into the lists above);
- ``pred``: Uint16[cells × n] (cell-major; ``MISSING`` where a cell lacks the image),
  ``conf``: Float32[cells × n] max probability (the store's value, float32-rounded);
- ``clean``: model index -> cell index of its clean cell (the "flipped" reference);
- ``files``: ``class/file`` per image when the run evaluated an image folder (absent else);
- ``breaks``: each image's breaking point (``analysis.slices.breaking_points``: the lowest
  severity > 0 where it is wrong while right when clean; lowest seed) per model and
  stressor: ``{values: [model][stressor] -> sorted severities, dtype, codes:
  Uint8|Uint16[models × stressors × n]}``, code k = ``values[m][s][k]``, ``NEVER`` (max − 1)
  = right at every severity, ``NONE`` (max) = wrong when clean, no cell or no value;
- ``thumbs``: ``{size, k, pos, sprites: {stressor: {cols, values}}}``: ``pos`` the k image
  positions (ascending) that have a thumbnail, chosen by ``thumb_order`` (flips first, then
  confident failures); the one at slot ``t = pos.index(p)`` sits at column ``t % cols``, row
  ``values.index(v) * rows + t // cols``;
- ``cams``: the CAM overlays the cam analysis saved (``_cams.py``), or absent:
  ``{side, groups: [[stressor, severity]], pos: [K] image positions, present: [M×G],
  maps: Uint8[M × G × K × side × side]}``.

>>> data = build_explorer_data("runs/demo")      # doctest: +SKIP
>>> data.nbytes()                                # what the page embeds  # doctest: +SKIP
"""
from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..constants import (
    CONFIDENT_THRESHOLD,
    DEFAULT_THUMB_BUDGET,
    MAX_THUMB_BUDGET,
    MIN_AUTO_THUMB_BUDGET,
    REPORT_TARGET_BYTES,
)
from ..store import RunFolder

CLEAN = "clean"
MISSING = 65535
THUMB = 32                       # thumbnail side in pixels (CIFAR's native size)
SPRITE_COLS = 64
WEBP_QUALITY = 80
MIN_THUMBS = 8                   # even a tiny budget shows this many images
PILOT = 32                       # images whose thumbnails measure the cost of one


@dataclass
class ExplorerData:
    payload: dict                                  # JSON-able (see the module docstring)
    sprites: dict[str, str] = field(default_factory=dict)   # sprite id -> data: URI
    notes: list[str] = field(default_factory=list)

    def nbytes(self) -> dict[str, int]:
        """Bytes embedded in the page: rows (base64 arrays) and images (data URIs)."""
        rows = sum(len(v) for k, v in self.payload.items() if k in ("idx", "label", "pred",
                                                                      "conf"))
        rows += len((self.payload.get("breaks") or {}).get("codes", ""))
        cams = len((self.payload.get("cams") or {}).get("maps", ""))
        return {"rows": rows, "images": sum(len(s) for s in self.sprites.values()),
                "cams": cams}


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"))
                            .tobytes()).decode("ascii")


def read_rows(store_path: Path, dataset: str) -> tuple[list[dict], dict]:
    """The store's done cells of ``dataset`` and their per-image arrays (via the store API,
    the one place the report reads per-image rows)."""
    from ..store import ResultsStore
    with ResultsStore(store_path, readonly=True) as store:
        classes = {m["name"]: m["class_names"] for m in store.models()}
        cells, rows = [], {}
        for c in store.cells(dataset=dataset):
            cells.append({"id": c.id, "model": c.model, "stressor": c.stressor,
                          "severity": float(c.severity), "seed": c.seed, "cell": c})
            rows[c.id] = store.predictions(c)
    return cells, {"rows": rows, "classes": classes}


def pack_rows(cells: list[dict], rows: dict[int, dict], classes: list[str],
              models: list[str]) -> dict:
    """The typed-array part of the payload from the store's cells and rows."""
    from ..store import stressor_family
    cells = [c for c in cells if c["model"] in models and len(rows[c["id"]]["idx"])]
    idx = np.unique(np.concatenate([rows[c["id"]]["idx"] for c in cells])) if cells \
        else np.zeros(0, np.int64)
    label = np.zeros(len(idx), np.int64)
    pred = np.full((len(cells), len(idx)), MISSING, np.uint16)
    conf = np.full((len(cells), len(idx)), -1.0, np.float32)
    names: list[str] = []
    for j, c in enumerate(cells):
        r = rows[c["id"]]
        pos = np.searchsorted(idx, r["idx"])
        label[pos] = r["label"]
        pred[j, pos] = r["pred"]
        conf[j, pos] = r["conf"]
        if c["stressor"] not in names:
            names.append(c["stressor"])
    order = sorted(names, key=lambda n: (n != CLEAN, _family_rank(stressor_family(n)), n))
    stressors = [{"name": n, "family": stressor_family(n), "benchmark": _benchmark(n)}
                 for n in order]
    sidx = {n: i for i, n in enumerate(order)}
    cell_list = [[models.index(c["model"]), sidx[c["stressor"]], c["severity"]]
                 for c in cells]
    clean = {str(models.index(c["model"])): j for j, c in enumerate(cells)
             if c["stressor"] == CLEAN}
    return {"classes": list(classes), "models": list(models), "stressors": stressors,
            "n": len(idx), "cells": cell_list, "clean": clean,
            "idx": _b64(idx.astype(np.int32)), "label": _b64(label.astype(np.uint16)),
            "pred": _b64(pred.ravel()), "conf": _b64(conf.ravel()),
            "breaks": pack_breaks(cells, pred, label, models, order), "_idx": idx,
            "_thumb_order": thumb_order(pred, conf, label, cells)}


def pack_breaks(cells: list[dict], pred: np.ndarray, label: np.ndarray, models: list[str],
                stressors: list[str]) -> dict:
    """Every image's breaking point per model and stressor, as codes into each pair's sorted
    severities (see the module docstring); an image missing from a cell counts as right."""
    from ..analysis.slices import breaking_points
    n = len(label)
    values: list[list[list[float]]] = [[[] for _ in stressors] for _ in models]
    found: dict[tuple[int, int], np.ndarray] = {}
    for mi, m in enumerate(models):
        mine = [(j, c) for j, c in enumerate(cells) if c["model"] == m]
        ref = next((j for j, c in mine if c["stressor"] == CLEAN), None)
        if ref is None:
            continue
        clean_ok = pred[ref] == label
        for si, s in enumerate(stressors):
            cs = [(j, c) for j, c in mine if c["stressor"] == s and c["severity"] > 0]
            if s == CLEAN or not cs:
                continue
            seed = min(c["seed"] for _, c in cs)
            cs = sorted(((j, c) for j, c in cs if c["seed"] == seed),
                        key=lambda t: t[1]["severity"])
            sev = [c["severity"] for _, c in cs]
            ok = np.stack([(pred[j] == label) | (pred[j] == MISSING) for j, _ in cs])
            values[mi][si] = sev
            found[mi, si] = breaking_points(sev, ok, clean_ok)
    longest = max((len(v) for per in values for v in per), default=0)
    dtype = np.uint8 if longest < 254 else np.uint16
    top = np.iinfo(dtype).max                      # NONE; top - 1 is NEVER
    codes = np.full((len(models), len(stressors), n), top, dtype)
    for (mi, si), brk in found.items():
        at = np.searchsorted(np.asarray(values[mi][si]), np.where(np.isfinite(brk), brk, 0))
        codes[mi, si] = np.where(np.isnan(brk), top, np.where(np.isinf(brk), top - 1, at))
    return {"values": values, "dtype": "uint8" if dtype == np.uint8 else "uint16",
            "codes": _b64(codes.ravel())}


def _family_rank(f: str) -> int:
    from ..constants import FAMILY_ORDER
    return FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER)


def _benchmark(name: str) -> bool:
    from ..store import stressor_info
    return stressor_info(name).benchmark


# ----------------------------------------------------------------------------- thumbnails
def sprite_uri(thumbs: np.ndarray, cols: int = SPRITE_COLS) -> str:
    """One WebP sprite sheet (data: URI) of uint8 thumbnails G×K×h×w×3: group g's image p at
    column ``p % cols``, row ``g * ceil(K / cols) + p // cols``."""
    from PIL import Image
    g, k, h, w, _ = thumbs.shape
    cols = min(cols, k)
    rows = math.ceil(k / cols)
    sheet = np.zeros((g * rows * h, cols * w, 3), np.uint8)
    for gi in range(g):
        for p in range(k):
            y, x = (gi * rows + p // cols) * h, (p % cols) * w
            sheet[y:y + h, x:x + w] = thumbs[gi, p]
    buf = io.BytesIO()
    # WebP, not JPEG: about half the bytes at the same look on 32 px tiles (measured on the
    # demo's sheets: 236 vs 403 B per clean tile for JPEG q80 4:4:4), and every current
    # browser decodes it. Tiles sit on its 16 px macroblock grid, so none bleeds into another.
    Image.fromarray(sheet).save(buf, format="WEBP", quality=WEBP_QUALITY)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _to_thumbs(x) -> np.ndarray:
    """float N×3×H×W in [0, 1] -> uint8 N×THUMB×THUMB×3."""
    import torch
    import torch.nn.functional as TF
    if x.shape[-1] != THUMB or x.shape[-2] != THUMB:
        x = TF.interpolate(x, size=(THUMB, THUMB), mode="area")
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def thumb_order(pred: np.ndarray, conf: np.ndarray, label: np.ndarray, cells: list[dict],
                threshold: float = CONFIDENT_THRESHOLD) -> tuple[np.ndarray, int, int]:
    """Image positions in the order they get thumbnails: first the images that flipped
    (right when clean, wrong in some stressed cell of the same model), then the other
    confident failures (wrong above ``threshold`` in any cell), then the rest; each group
    most confident first (ties by index). Returns (order, n flipped, n confident). What the
    explorer opens on (flips, then the wrong ones by confidence) comes first, so a small
    budget still shows pictures where the reader starts.

    pred, conf: cells × images (``MISSING`` / -1 where a cell lacks the image)."""
    n = pred.shape[1] if pred.ndim == 2 else 0
    if n == 0:
        return np.zeros(0, np.int64), 0, 0
    wrong = (pred != label[None, :]) & (pred != MISSING)
    clean_ok: dict[str, np.ndarray] = {}
    for j, c in enumerate(cells):
        if c["stressor"] == CLEAN:
            clean_ok[c["model"]] = pred[j] == label
    flip_conf = np.full(n, -1.0)
    for j, c in enumerate(cells):
        ok = clean_ok.get(c["model"])
        if c["stressor"] != CLEAN and ok is not None:
            hit = wrong[j] & ok
            flip_conf = np.where(hit, np.maximum(flip_conf, conf[j]), flip_conf)
    fail_conf = np.where(wrong, conf, -1.0).max(axis=0)
    flipped = flip_conf >= 0
    confident = ~flipped & (fail_conf > threshold)
    rank = np.where(flipped, 0, np.where(confident, 1, 2))
    key = np.where(flipped, flip_conf, np.where(confident, fail_conf, 0.0))
    order = np.lexsort((np.arange(n), -key, rank))
    return order, int(flipped.sum()), int(confident.sum())


def build_thumbs(run_dir: Path, payload: dict, cells: list[dict],
                 budget: int) -> tuple[dict, dict, list[str]]:
    """Sprite sheets for as many images as ``budget`` bytes allow, in ``thumb_order`` (flips,
    then confident failures, then the rest), their stressed versions rebuilt by the store
    layer (``store.cell_images``: stressors are deterministic, so this runs no model)."""
    order, n_flip, n_conf = payload.pop("_thumb_order", None) or (
        np.arange(len(payload["_idx"])), 0, 0)
    idx = payload["_idx"][order]
    notes: list[str] = []
    groups: dict[str, dict[tuple[float, int], object]] = {}   # stressor -> (sev, seed) -> Cell
    for c in cells:
        groups.setdefault(c["stressor"], {}).setdefault((c["severity"], c["seed"]), c["cell"])
    if CLEAN not in groups:
        return {}, {}, ["No thumbnails: the store has no clean cell to take the images from."]
    # Measure what a thumbnail costs on a pilot of the first images of every cell, then
    # give thumbnails to as many images as the budget holds.
    pilot = min(len(idx), PILOT)
    try:
        sprites, meta = _sprites(run_dir, groups, idx[:pilot], notes)
    except (OSError, KeyError, ValueError) as e:  # no run config, data moved, images gone
        why = f"{type(e).__name__}: {str(e)[:160]}"
        return {}, {}, [f"No thumbnails: the run's images could not be reloaded ({why})."]
    per_image = sum(len(u) for u in sprites.values()) / max(pilot, 1)
    k = int(min(len(idx), budget / max(per_image, 1.0)))
    k = max(k, min(len(idx), MIN_THUMBS))
    pos = np.sort(order[:k])          # slots follow the image positions, ascending
    if k != pilot or not np.array_equal(order[:k], pos):
        sprites, meta = _sprites(run_dir, groups, payload["_idx"][pos], [])
    if k < len(idx):
        notes.append(thumb_note(k, len(idx), n_flip, n_conf, budget))
    return {"size": THUMB, "k": k, "pos": pos.tolist(), "sprites": meta}, sprites, notes


def thumb_note(k: int, n: int, n_flip: int, n_conf: int, budget: int) -> str:
    """What the page says when the thumbnail budget leaves images out, and how to get more."""
    got = ("every flipped image" if k >= n_flip else f"{k} of the {n_flip} flipped images")
    if k > n_flip and n_conf:
        got += (", every other confident failure" if k >= n_flip + n_conf
                else f", {k - n_flip} of the {n_conf} other confident failures")
    return (f"Thumbnails are embedded for {k} of the {n} images ({got}), within a "
            f"{budget / 2 ** 20:.3g} MB budget that keeps the page small enough to mail; "
            f"the other {n - k} keep their rows, without pictures. For more, re-write the "
            "page with `failmodes report RUN --thumb-budget MB` (at most "
            f"{MAX_THUMB_BUDGET // 2 ** 20}).")


def _sprites(run_dir: Path, groups: dict, idx: np.ndarray,
             notes: list[str]) -> tuple[dict, dict]:
    from ..store import cell_images
    from ..stressors import StressorError
    sprites, meta = {}, {}
    for s, by in groups.items():
        keys = sorted(by)
        if s != CLEAN and _needs_model(s):
            notes.append(f"No thumbnails for {s}: its images depend on the model, and the "
                         "report never runs one.")
            continue
        try:
            stack = np.stack([_to_thumbs(cell_images(run_dir, by[key], idx)) for key in keys])
        except StressorError as e:  # a stressor this installation lacks
            notes.append(f"No thumbnails for {s}: {str(e)[:160]}")
            continue
        sprites[s] = sprite_uri(stack)
        meta[s] = {"cols": min(SPRITE_COLS, len(idx)), "values": [v for v, _ in keys]}
    return sprites, meta


# Room kept for what the page holds besides figures and thumbnails: the per-image rows
# (~0.6 MB for 76 000 rows), the first screen's two figures, the CAM maps, the text.
OTHER_BYTES = 2 * 2 ** 20


def auto_thumb_budget(figure_bytes: int) -> int:
    """The default thumbnail budget of a page whose section figures take ``figure_bytes``:
    what keeps the page under ``REPORT_TARGET_BYTES``, at most ``DEFAULT_THUMB_BUDGET`` and
    at least ``MIN_AUTO_THUMB_BUDGET`` (a figure-heavy page still shows the first flips).

    >>> auto_thumb_budget(0) == DEFAULT_THUMB_BUDGET, auto_thumb_budget(12 * 2 ** 20) // 2 ** 20
    (True, 1)
    """
    room = REPORT_TARGET_BYTES - int(figure_bytes) - OTHER_BYTES
    return int(max(MIN_AUTO_THUMB_BUDGET, min(DEFAULT_THUMB_BUDGET, room)))


def check_thumb_budget(nbytes, what: str = "thumbnail budget") -> int:
    """``nbytes`` as an int when it is a sane thumbnail budget (above 0, at most
    ``MAX_THUMB_BUDGET``); else an ``InputError`` naming ``what`` and the value in MB."""
    from ..errors import InputError
    ok = isinstance(nbytes, (int, float)) and not isinstance(nbytes, bool) \
        and math.isfinite(nbytes) and 0 < nbytes <= MAX_THUMB_BUDGET
    if not ok:
        shown = f"{nbytes / 2 ** 20:g} MB" if isinstance(nbytes, (int, float)) else repr(nbytes)
        raise InputError(f"{what} {shown} is out of range: give more than 0 and at most "
                         f"{MAX_THUMB_BUDGET // 2 ** 20} MB (default "
                         f"{DEFAULT_THUMB_BUDGET // 2 ** 20} MB)")
    return int(nbytes)


def _needs_model(name: str) -> bool:
    from ..stressors import StressorError, get_stressor
    try:
        return bool(get_stressor(name).needs_model)
    except StressorError:
        return False


def build_explorer_data(run_dir: str | Path, dataset: str | None = None, *,
                        models: list[str] | None = None,
                        thumb_budget: int = DEFAULT_THUMB_BUDGET) -> ExplorerData | None:
    """Everything the explorer embeds for ``dataset`` (the main one when None); None when the
    run has no store or no done cell."""
    run_dir = Path(run_dir)
    store = RunFolder(run_dir).store
    if not store.exists():
        return None
    cells, got = read_rows(store, dataset) if dataset else _main(store)
    if not cells:
        return None
    names = models or list(dict.fromkeys(c["model"] for c in cells))
    classes = got["classes"][names[0]]
    payload = pack_rows(cells, got["rows"], classes, names)
    data = ExplorerData(payload)
    files = folder_names(run_dir, cells[0]["cell"].dataset if cells else None, payload["_idx"])
    if files is not None:
        payload["files"] = files
    thumbs, data.sprites, notes = build_thumbs(run_dir, payload, cells, thumb_budget)
    if thumbs:
        payload["thumbs"] = thumbs
    data.notes += notes
    from ._cams import pack_cams
    cams, why = pack_cams(run_dir, names, payload["_idx"])
    if cams is not None:
        payload["cams"] = cams
    if why:
        data.notes.append(why)
    payload.pop("_idx")
    return data


def folder_names(run_dir: Path, dataset: str | None, idx: np.ndarray) -> list[str] | None:
    """``class/file`` of each image (dataset index ``idx``) when the run evaluated an image
    folder: image i of a folder is the i-th file of its sorted class folders, each sorted by
    name (``data.folder_files``); None for other data, or when the folder is gone or changed
    (the names would be guesses)."""
    from ..data import find_data_spec
    from ..data.folders import ImageFolder, folder_files
    from ..store import parse_dataset_key, read_run_config
    path = RunFolder(run_dir).run_config()
    if path is None or dataset is None:
        return None
    try:
        cfg = read_run_config(path)
        kind = find_data_spec(cfg.data)
        if not isinstance(kind, ImageFolder):
            return None
        names = folder_files(kind.argument(cfg.data), parse_dataset_key(dataset).split)
    except (OSError, ValueError, KeyError):   # no config, a moved folder, a bad key
        return None
    if len(idx) and int(idx.max()) >= len(names):
        return None
    return [names[int(i)] for i in idx]


def _main(store: Path) -> tuple[list[dict], dict]:
    from ..store import ResultsStore
    with ResultsStore(store, readonly=True) as st:
        counts: dict[str, int] = {}
        for c in st.cells():
            counts[c.dataset] = counts.get(c.dataset, 0) + 1
    if not counts:
        return [], {}
    return read_rows(store, max(counts, key=counts.__getitem__))


# ----------------------------------------------------------------------------- page
def _mb(n: int) -> str:
    return f"{n / 2 ** 20:.1f} MB" if n >= 2 ** 20 else f"{n / 1024:.0f} KB"


def script_json(obj) -> str:
    """JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` are
    escaped, so no string of the run (a class named ``</script>``) can end the block."""
    import json
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def page_context(data: ExplorerData) -> dict:
    """What ``explorer.html.j2`` renders: the JSON block, the sprite <img>s, the sizes."""
    p = dict(data.payload)
    thumbs = p.get("thumbs")
    sprites = []
    if thumbs:
        for i, (name, meta) in enumerate(thumbs["sprites"].items()):
            meta["img"] = f"fm-sprite-{i}"
            sprites.append({"id": meta["img"], "src": data.sprites[name]})
    size = data.nbytes()
    k = thumbs["k"] if thumbs else 0
    return {"json": script_json(p), "sprites": sprites, "notes": data.notes,
            "total_rows": p["n"] * len(p["cells"]), "n_images": p["n"],
            "n_cells": len(p["cells"]), "rows_mb": _mb(size["rows"]),
            "images_mb": _mb(size["images"]), "n_sprites": len(sprites),
            "thumb_note": (f"{k} of {p['n']} images, {THUMB} px" if thumbs else "none"),
            "cams_mb": _mb(size["cams"]) if "cams" in p else None,
            "n_cam_images": sum(1 for q in p["cams"]["pos"] if q >= 0) if "cams" in p else 0,
            "bytes": size["rows"] + size["images"] + size["cams"]}


def explorer_script() -> str:
    """The explorer's JavaScript, exactly as embedded (its hash goes into the CSP)."""
    from importlib.resources import files
    return files("failmodes.report").joinpath("templates/explorer.js").read_text("utf-8")


def content_security_policy(scripts: list[str]) -> str:
    """No network at all; images only as data: URIs; scripts only those embedded here,
    each allowed by its SHA-256 (CSP level 2), so an injected ``<script>`` never runs."""
    import hashlib
    policy = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    if scripts:
        hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8"))
                                                        .digest()).decode("ascii") + "'"
                          for s in scripts)
        policy += f"; script-src {hashes}"
    return policy + "; base-uri 'none'; form-action 'none'"
