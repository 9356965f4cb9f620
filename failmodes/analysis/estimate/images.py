"""``failmodes estimate RUN --images SPEC``: estimate the run's models' accuracy on new,
unlabelled images, test whether they are shifted, and name the stored cells they resemble.

Unlike the grid check (``estimate_run``), this runs the model: on the new images, and on up
to ``MMD_MAX_IMAGES`` of the reference images for the penultimate features of the MMD test.
The estimators are fitted on the same stored reference rows as the grid check (the
validation cell, or the random half of the clean test cell), so the two agree.

>>> out = estimate_images("runs/quick", "shifted_pngs/", out_dir="est")   # doctest: +SKIP
>>> out.results["r18"].sentence()                                         # doctest: +SKIP
'looks like fog at 3 (stored accuracy 71.0 %); estimated accuracy 69.0 % (ATC-MC-TS, 66.0–72.0)'
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..._atomic import write_text_atomic
from ..._device import resolve_device
from ...data import load_dataset
from ...data.decode import decode_image
from ...data.folders import IMAGE_EXTENSIONS
from ...estimate import DEFAULT_HEADLINE, EstimateError, LabelFreeResult, accuracy, model_outputs
from ...estimate.shift import MMD_MAX_IMAGES
from ...store import ANALYSIS_DIR, VAL_SPLIT, RunFolder, is_validation
from ._grid import model_source
from ._page import write_page

JSON_NAME = "estimate.json"
PAGE_NAME = "estimate.html"


@dataclass
class Images:
    """The batch to estimate on: uint8 N×H×W×3, its labels when the spec had any, a name
    per image (file path or dataset index) and what it was, in words."""

    images: torch.Tensor
    labels: torch.Tensor | None
    names: list[str]
    what: str


@dataclass
class ImagesEstimate:
    images: Images
    results: dict[str, LabelFreeResult] = field(default_factory=dict)
    json_path: Path | None = None
    page_path: Path | None = None


def _flat_folder(folder: Path) -> bool:
    """A folder with images but no sub-folder of images: labels unknown."""
    subdirs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
    return not any(any(f.suffix.lower() in IMAGE_EXTENSIONS for f in d.rglob("*")) for d in subdirs)


def load_images(spec: str, *, split: str = "test", image_size: int | None = None,
                limit: int | None = None, seed: int = 0) -> Images:
    """A data spec (labels kept, only as the check) or a folder of images without class
    folders (searched recursively, sorted). ``image_size``: resize to N×N (square,
    bilinear) as the run's data; ``limit``: a seeded random subset of that many images."""
    path = Path(os.path.expanduser(spec))
    if path.is_dir() and _flat_folder(path):
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise EstimateError(f"{path}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        if limit is not None and limit < len(files):
            keep = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:limit]
            files = [files[i] for i in sorted(keep.tolist())]
        arrays = [decode_image(f, image_size) for f in files]
        sizes = {a.shape for a in arrays}
        if len(sizes) > 1:
            raise EstimateError(f"{path}: images of {len(sizes)} different sizes; pass "
                                "--image-size N")
        return Images(torch.from_numpy(np.stack(arrays)), None,
                      [str(f.relative_to(path)) for f in files],
                      f"{len(files)} images from {path} (no labels)")
    ds = load_dataset(spec, split, image_size=image_size)
    rows = torch.arange(len(ds))
    if limit is not None and limit < len(ds):
        gen = torch.Generator().manual_seed(seed)
        rows = torch.sort(torch.randperm(len(ds), generator=gen)[:limit]).values
    idx = ds.indices[rows] if ds.indices is not None else rows
    return Images(ds.images[rows], ds.labels[rows], [f"#{int(i)}" for i in idx],
                  f"{len(rows)} images of {spec} ({split}); their labels are only the check")


def _headline(run_dir: Path, model: str) -> str:
    """The estimator with the smallest error on this model's stored cells when the grid
    check has run, else the default."""
    path = RunFolder(run_dir).analysis / "estimate.json"
    try:
        best = json.loads(path.read_text())["per_model"][model]["best_estimator"]
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_HEADLINE
    return best if isinstance(best, str) else DEFAULT_HEADLINE


def estimate_images(run_dir: str | os.PathLike, images: str, *, model: str | None = None,
                    out_dir: str | os.PathLike | None = None, split: str = "test",
                    limit: int | None = None, n_boot: int = 1000, level: float = 0.95,
                    seed: int = 0, nearest: int = 5, device: str = "auto",
                    batch_size: int = 256, thumbnails: int = 24) -> ImagesEstimate:
    """Estimate each model of ``run_dir`` (or only ``model``) on ``images`` (see
    ``load_images``); write ``out_dir/estimate.json`` and ``out_dir/estimate.html``
    (default ``out_dir``: ``RUN/analysis/estimate-images``)."""
    from ...evaluate import open_run
    run_dir = Path(run_dir)
    if not RunFolder(run_dir).store.is_file():
        raise EstimateError(f"no results store at {RunFolder(run_dir).store}; run `failmodes "
                            "evaluate --out RUN` first")
    dev = resolve_device(device)
    out = ImagesEstimate(images=Images(torch.empty(0), None, [], ""))
    with open_run(run_dir) as ctx:
        names = ctx.model_names()
        if model is not None and model not in names:
            raise EstimateError(f"model {model!r} is not in {run_dir}; choose from "
                                f"{', '.join(names)}")
        ref_data: dict = {}
        classes: dict[str, list[str]] = {}
        for name in [model] if model is not None else names:
            rec = next(m for m in ctx.store.models() if m["name"] == name)
            cells = ctx.store.cells(model=name)
            source = model_source(ctx.store, name, rec.get("meta"), cells)
            if source is None:
                raise EstimateError(f"{name}: no clean cell with stored logits in {run_dir} to "
                                    "fit the estimators on")
            key = VAL_SPLIT if is_validation(source.cell.dataset) else None
            if key not in ref_data:
                ref_data[key] = ctx.dataset(key)
            ds = ref_data[key]
            if not out.images.names:
                side = ds.images.shape[1]
                out.images = load_images(images, split=split, image_size=side, limit=limit,
                                         seed=seed)
            clf = ctx.model(name, dev)
            feats = _reference_features(clf, ds, source.idx, seed, batch_size, dev)
            ref = dataclasses.replace(source.reference, features=feats)
            res = accuracy(clf, out.images.images, ref, labels=out.images.labels, run=run_dir,
                           run_model=name, n_boot=n_boot, level=level, seed=seed,
                           nearest=nearest, headline=_headline(run_dir, name),
                           batch_size=batch_size, device=dev)
            res.notes[:0] = [f"reference: {source.fitted_on}"] + source.notes
            res = dataclasses.replace(res, nearest=_with_regimes(run_dir, res.nearest))
            out.results[name] = res
            classes[name] = list(clf.class_names)
    target = Path(out_dir) if out_dir is not None else run_dir / ANALYSIS_DIR / "estimate-images"
    target.mkdir(parents=True, exist_ok=True)
    doc = {"run": str(run_dir), "images": out.images.what, "n_images": len(out.images.names),
           "models": {m: r.as_dict() for m, r in out.results.items()}}
    out.json_path = write_text_atomic(target / JSON_NAME, json.dumps(doc, indent=1, default=str))
    out.page_path = write_page(target / PAGE_NAME, out.images.what, out.images.images,
                               out.images.names, out.results, thumbnails, classes)
    return out


def _with_regimes(run_dir: Path, near: list) -> list:
    """The nearest cells with their stressor's failure regime from the curves analysis's
    ``regimes`` table, when the run folder holds it."""
    try:
        rows = json.loads((RunFolder(run_dir).analysis / "curves.json").read_text())["tables"]["regimes"]
        regimes = {(r["model"], r["dataset"], r["stressor"]): r["regime"] for r in rows}
    except (OSError, ValueError, KeyError, TypeError):
        return near
    return [dataclasses.replace(c, regime=regimes.get((c.model, c.dataset, c.stressor)))
            for c in near]


def _reference_features(clf, ds, idx: np.ndarray, seed: int, batch_size: int, dev):
    """Penultimate features of up to ``MMD_MAX_IMAGES`` reference images (seeded pick)."""
    where = {int(d): r for r, d in enumerate((ds.indices if ds.indices is not None
                                               else torch.arange(len(ds))).tolist())}
    rows = [where[int(i)] for i in idx if int(i) in where]
    if not rows:
        return None
    gen = torch.Generator().manual_seed(seed)
    pick = torch.tensor(rows)[torch.randperm(len(rows), generator=gen)[:MMD_MAX_IMAGES]]
    return model_outputs(clf, ds.images[pick], batch_size=batch_size, device=dev).features
