"""Class activation maps and the measurements taken on them.

CAMs come from pytorch-grad-cam; everything here works on batches of maps ``N×H×W``
(float, non-negative, any scale) and returns one value per map. A map is treated as a
mass distribution over pixels: its values divided by their sum. An all-zero map (Grad-CAM
gives one when every weighted activation is negative) has no distribution: its statistics
are NaN and aggregates use nan-aware means.

>>> cams = compute_cams(model, images)                  # N×H×W in [0, 1], predicted class  # doctest: +SKIP
>>> border_share(cams)                                  # N, mass in the outer band  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import io
from contextlib import contextmanager
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

# The border band: the outer BORDER_BAND fraction of each side (8 px of a 32-px image on
# every edge). It covers 1 − (1 − 2·0.25)² = 75 % of the area; the centre is the middle
# 50 % × 50 % square, where object-centred data sets (CIFAR-10) keep the object.
from ..errors import FailmodesError


BORDER_BAND = 0.25

# Superclasses for "fine-grained" confusions. The default is finer than animals/vehicles:
# with two groups, ship → airplane (the classic water/sky context error) and cat → frog would
# count as fine-grained. Here siblings are classes that differ in detail, not in kind.
CIFAR10_SUPERCLASS = {
    "cat": "mammal", "dog": "mammal", "deer": "mammal", "horse": "mammal",
    "bird": "bird", "frog": "amphibian",
    "automobile": "road_vehicle", "truck": "road_vehicle",
    "airplane": "aircraft", "ship": "watercraft",
}
# The coarse two-group map (animals / vehicles), selectable with superclasses="coarse".
CIFAR10_SUPERCLASS_COARSE = {
    "airplane": "vehicle", "automobile": "vehicle", "ship": "vehicle", "truck": "vehicle",
    "bird": "animal", "cat": "animal", "deer": "animal", "dog": "animal", "frog": "animal",
    "horse": "animal",
}

# Failure-category thresholds (see categorize_failure).
OVERLAP_THRESHOLD = 0.5


class CamError(ValueError, FailmodesError):
    """A bad CAM method, layer or input; the message is one line meant for users."""


def _methods() -> dict[str, type]:
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, ScoreCAM
    return {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM}


# The one list of CAM methods (CLI choices read it). ScoreCAM is gradient-free and costs
# one forward pass per channel of the target layer per image (128 for a width-16 ResNet).
METHODS = ("gradcam", "gradcam++", "scorecam")


def resolve_layer(model: nn.Module, layer: str | nn.Module | None = None) -> nn.Module:
    """The module to hook: ``layer`` itself, a module name (inside ``model.net`` for a
    Classifier, else inside ``model``), or ``model.cam_layer`` when None."""
    if isinstance(layer, nn.Module):
        return layer
    if layer is None:
        if not hasattr(model, "cam_layer"):
            raise CamError(f"{type(model).__name__} has no cam_layer; pass a layer name")
        return model.cam_layer
    for root in (getattr(model, "net", None), model):
        if root is None:
            continue
        try:
            return root.get_submodule(layer)
        except AttributeError:
            pass
    root = getattr(model, "net", model)
    names = [n for n, _ in root.named_children()]
    raise CamError(f"no module {layer!r} in {type(root).__name__}; top-level modules: "
                   f"{', '.join(names)} (nested names use dots, e.g. layer4.1)")


@contextmanager
def cam_mode(model: nn.Module):
    """Eval mode with frozen parameters for the duration, then every module's training flag,
    every parameter's ``requires_grad`` and ``.grad`` exactly as they were.

    Why freeze: CAMs need gradients w.r.t. activations only; frozen weights skip the
    weight-gradient work and keep the caller's ``.grad`` (pytorch-grad-cam calls
    ``model.zero_grad()``) untouched.
    """
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    try:
        model.eval()
        for p, _, _ in params:
            p.requires_grad_(False)
        yield model
    finally:
        for p, rg, g in params:
            p.requires_grad_(rg)
            p.grad = g
        for m, t in modes:
            m.training = t


def compute_cams(model: nn.Module, images: torch.Tensor,
                 targets: torch.Tensor | Sequence[int] | None = None, *,
                 method: str = "gradcam", layer: str | nn.Module | None = None,
                 batch_size: int = 128, return_logits: bool = False):
    """CAMs of ``images`` (float N×3×H×W in [0, 1]) for class ``targets`` (N ints; None =
    each image's predicted class).

    Returns float32 N×H×W on the CPU in [0, 1] (each map min-max scaled by
    pytorch-grad-cam and upsampled to the input size), plus the logits N×C when
    ``return_logits``. The model's modes and gradients are restored afterwards.

    >>> cams = compute_cams(model, x, targets=labels, method="gradcam++")  # doctest: +SKIP
    """
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    if method not in METHODS:
        raise CamError(f"unknown CAM method {method!r}; choose from {', '.join(METHODS)}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise CamError(f"images must be N×3×H×W, got {tuple(images.shape)}")
    n = images.shape[0]
    if targets is not None:
        targets = torch.as_tensor(targets, dtype=torch.int64).flatten().tolist()
        if len(targets) != n:
            raise CamError(f"{len(targets)} targets for {n} images")
    target_layer = resolve_layer(model, layer)
    device = next(model.parameters()).device
    cams, logits = [], []
    with cam_mode(model), torch.enable_grad():
        from ..models.cam_layers import cam_reshape
        cam = _methods()[method](model=model, target_layers=[target_layer],
                                 reshape_transform=cam_reshape(model, layer))
        if method == "scorecam":
            cam.batch_size = batch_size  # masked copies per forward pass
        try:
            for s in range(0, n, batch_size):
                x = images[s:s + batch_size].detach().to(device, torch.float32)
                x.requires_grad_(True)  # weights are frozen: the graph hangs on the input
                t = None if targets is None else [ClassifierOutputTarget(k)
                                                  for k in targets[s:s + batch_size]]
                with contextlib.redirect_stderr(io.StringIO()):  # ScoreCAM's tqdm bars
                    out = cam(input_tensor=x, targets=t)
                cams.append(torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)))
                if return_logits:
                    logits.append(cam.outputs.detach().float().cpu())
        finally:
            cam.activations_and_grads.release()
    h, w = images.shape[-2:]
    result = torch.cat(cams) if cams else torch.zeros(0, h, w)
    if return_logits:
        return result, (torch.cat(logits) if logits else torch.zeros(0, 0))
    return result


# ----------------------------------------------------------------------------- measurements
def _as_np(cams) -> np.ndarray:
    a = cams.detach().cpu().numpy() if isinstance(cams, torch.Tensor) else np.asarray(cams)
    if a.ndim != 3:
        raise CamError(f"CAMs must be N×H×W, got shape {a.shape}")
    return a.astype(np.float64)


def _mass(cams) -> np.ndarray:
    """Maps as distributions (N×H×W, each summing to 1); all-zero maps become NaN."""
    a = np.clip(_as_np(cams), 0.0, None)
    s = a.sum(axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, a / np.where(s > 0, s, 1.0), np.nan)


def border_mask(h: int, w: int, band: float = BORDER_BAND) -> np.ndarray:
    """Boolean H×W, True in the outer ``band`` fraction of each side (rounded to pixels)."""
    by, bx = int(round(h * band)), int(round(w * band))
    m = np.ones((h, w), dtype=bool)
    m[by:h - by, bx:w - bx] = False
    return m


def border_share(cams, band: float = BORDER_BAND) -> np.ndarray:
    """Fraction of each map's mass in the border band (N, in [0, 1]; NaN for an empty map).

    A uniform map gives the band's area fraction (0.75 at band 0.25); an object-centred
    map gives less.
    """
    p = _mass(cams)
    return p[:, border_mask(p.shape[1], p.shape[2], band)].sum(axis=1)


def center_of_mass(cams) -> np.ndarray:
    """Centre of mass of each map, N×2 (row, column) in pixels (pixel centres at 0..H−1)."""
    p = _mass(cams)
    ys = np.arange(p.shape[1], dtype=np.float64)
    xs = np.arange(p.shape[2], dtype=np.float64)
    return np.stack([(p.sum(axis=2) * ys).sum(axis=1), (p.sum(axis=1) * xs).sum(axis=1)], 1)


def cam_entropy(cams) -> np.ndarray:
    """Shannon entropy of each map's mass over pixels divided by log(H·W): N in [0, 1],
    0 = all mass on one pixel, 1 = uniform. Higher = more diffuse attention."""
    p = _mass(cams)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=(1, 2))
    ent[np.isnan(p).any(axis=(1, 2))] = np.nan
    return ent / np.log(p.shape[1] * p.shape[2])


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)


def pearson(cams, ref) -> np.ndarray:
    """Pearson correlation of each map with its reference over pixels (N; NaN if constant)."""
    a, b = _as_np(cams), _as_np(ref)
    return _rowwise_pearson(a.reshape(len(a), -1), b.reshape(len(b), -1))


def spearman(cams, ref) -> np.ndarray:
    """Spearman rank correlation of each map with its reference (average ranks for ties,
    which matter: Grad-CAM's ReLU leaves many exact zeros)."""
    from scipy.stats import rankdata
    a, b = _as_np(cams), _as_np(ref)
    ra = rankdata(a.reshape(len(a), -1), axis=1)
    rb = rankdata(b.reshape(len(b), -1), axis=1)
    return _rowwise_pearson(ra, rb)


def overlap(cams, ref) -> np.ndarray:
    """Histogram intersection of the two maps' masses, Σ min(p, q): N in [0, 1],
    1 = the same distribution, 0 = disjoint support."""
    return np.minimum(_mass(cams), _mass(ref)).sum(axis=(1, 2))


def drift_metrics(cams, ref, band: float = BORDER_BAND) -> dict[str, np.ndarray]:
    """Per-map drift of ``cams`` from ``ref`` (both N×H×W): pearson, spearman,
    com_shift_px (Euclidean, pixels), entropy and border_share of ``cams``.

    >>> d = drift_metrics(cams_fog5, cams_clean); d["spearman"].mean()  # doctest: +SKIP
    """
    a, b = _as_np(cams), _as_np(ref)
    if a.shape != b.shape:
        raise CamError(f"CAM shapes differ: {a.shape} vs {b.shape}")
    shift = np.linalg.norm(center_of_mass(a) - center_of_mass(b), axis=1)
    return {"pearson": pearson(a, b), "spearman": spearman(a, b), "com_shift_px": shift,
            "entropy": cam_entropy(a), "border_share": border_share(a, band)}


# ----------------------------------------------------------------------------- categories
FAILURE_TYPES = ("fine_grained", "context", "other")


def superclass_lookup(spec: str = "auto", class_names: Sequence[str] = ()
                      ) -> Callable[[str], str | None]:
    """``class name -> superclass`` (None when unknown: never fine-grained).

    ``spec``: "fine" or "coarse" (the CIFAR-10 maps above); "auto" (default): "fine" for
    the CIFAR-10 class set, else the failures analysis's automatic map (ImageNet for 1000
    classes), else none; anything else (``cifar10``, ``imagenet``, ``none``, a YAML path)
    goes to ``failmodes.analysis.superclasses.resolve_superclasses``.
    """
    maps = {"fine": CIFAR10_SUPERCLASS, "coarse": CIFAR10_SUPERCLASS_COARSE}
    if spec in maps:
        return maps[spec].get
    if spec == "auto" and set(class_names) == set(CIFAR10_SUPERCLASS):
        return CIFAR10_SUPERCLASS.get
    try:
        from .superclasses import resolve_superclasses
    except ImportError:
        if spec == "auto":
            return lambda name: None
        raise CamError(f"unknown superclass map {spec!r}; choose auto, fine or coarse") from None
    m = resolve_superclasses(None if spec == "auto" else spec, list(class_names))
    if m is None:
        return lambda name: None
    lookup = {c: m.names[g] for c, g in zip(class_names, m.group_of.tolist()) if g >= 0}
    return lookup.get


def categorize_failure(true_name: str, pred_name: str, pred_border_share: float,
                       pred_true_overlap: float, superclass_of: Callable[[str], str | None], *,
                       band_area: float = 1 - (1 - 2 * BORDER_BAND) ** 2,
                       overlap_threshold: float = OVERLAP_THRESHOLD) -> str:
    """The failure type of one wrong prediction, by this rule, in order:

    1. ``fine_grained``: true and predicted class share a (known) superclass (cat → dog).
    2. ``context``: across superclasses, and the predicted class's CAM puts more mass on
       the border band than a uniform map would (``pred_border_share > band_area``, 0.75
       at band 0.25), or overlaps the true class's CAM by less than ``overlap_threshold``
       (histogram intersection): the evidence was found off the object (ship → airplane
       on sky-blue water).
    3. ``other``: everything else (including NaN CAM statistics).

    >>> categorize_failure("cat", "dog", 0.2, 0.9, superclass_lookup("fine"))
    'fine_grained'
    """
    st, sp = superclass_of(true_name), superclass_of(pred_name)
    if st is not None and st == sp:
        return "fine_grained"
    if pred_border_share > band_area or pred_true_overlap < overlap_threshold:
        return "context"
    return "other"
