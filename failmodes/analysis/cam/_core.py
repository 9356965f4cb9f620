"""Computing class activation maps: the CAM methods (pytorch-grad-cam), the layer to hook,
and a finer layer where the default one is too coarse.

``compute_cams`` returns pytorch-grad-cam's display maps (each min-max scaled to [0, 1] and
upsampled) and, with ``raw=True``, the raw maps: ReLU(Σ_k w_k A_k) at the layer's own
resolution, unscaled, so their mass (how much positive evidence there is) survives. The
measurements (``_cam_measures.py``) are taken on the raw maps: min-max scaling makes a flat
map with a 2 % bump look fully focused and turns a uniform map into all zeros.

>>> cams, raw = compute_cams(model, images, raw=True)   # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from contextlib import contextmanager
from typing import cast

import numpy as np
import torch
from torch import nn

from ...errors import FailmodesError

# A map coarser than this (rows or columns) cannot tell the border band from the centre
# (a 4×4 map has only its middle 2×2 cells off the band): the analysis looks for a finer
# layer (e.g. layer3 of a CIFAR ResNet, 8×8) when the default gives less.
MIN_MAP_SIDE = 8


class CamError(ValueError, FailmodesError):
    """A bad CAM method, layer or input; the message is one line meant for users."""


def _methods() -> dict[str, type]:
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, ScoreCAM
    return {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM}


# The one list of CAM methods (CLI choices read it). ScoreCAM is gradient-free and costs
# one forward pass per channel of the target layer per image (128 for a width-16 ResNet).
METHODS = ("gradcam", "gradcam++", "scorecam")


def _layer_error(model: nn.Module, layer: nn.Module, e: Exception) -> CamError:
    # pytorch-grad-cam needs N×C×h×w activations (or tokens a reshape turns into them); a
    # Linear layer or a flattened output fails deep inside it.
    root = getattr(model, "net", model)
    name = next((n for n, m in root.named_modules() if m is layer), type(layer).__name__)
    msg = str(e).strip().splitlines()
    return CamError(f"Grad-CAM cannot use layer {name!r} ({type(layer).__name__}: "
                    f"{type(e).__name__}: {msg[0][:120] if msg else ''}); pass --cam-layer NAME "
                    "naming a layer with N×C×H×W maps (a convolution or a block of them)")


def resolve_layer(model: nn.Module, layer: str | nn.Module | None = None) -> nn.Module:
    """The module to hook: ``layer`` itself, a module name (inside ``model.net`` for a
    Classifier, else inside ``model``), or ``model.cam_layer`` when None."""
    if isinstance(layer, nn.Module):
        return layer
    if layer is None:
        if not hasattr(model, "cam_layer"):
            raise CamError(f"{type(model).__name__} has no cam_layer; pass a layer name")
        return cast(nn.Module, model.cam_layer)  # Classifier.cam_layer, a property
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
                 targets: torch.Tensor | np.ndarray | Sequence[int] | None = None, *,
                 method: str = "gradcam", layer: str | nn.Module | None = None,
                 batch_size: int = 128, return_logits: bool = False, raw: bool = False):
    """CAMs of ``images`` (float N×3×H×W in [0, 1]) for class ``targets`` (N ints; None =
    each image's predicted class).

    Returns float32 N×H×W on the CPU in [0, 1] (each map min-max scaled by
    pytorch-grad-cam and upsampled to the input size: for display); with ``raw`` also the
    raw maps N×h×w at the layer's resolution (non-negative, unscaled); with
    ``return_logits`` also the logits N×C, in that order. The model's modes and gradients
    are restored afterwards.

    >>> cams = compute_cams(model, x, targets=labels, method="gradcam++")   # doctest: +SKIP
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
    cams, raws, logits = [], [], []
    with cam_mode(model), torch.enable_grad():
        from ...models.cam_layers import cam_reshape
        cam = _recording(_methods()[method])(model=model, target_layers=[target_layer],
                                             reshape_transform=cam_reshape(model, layer))
        if method == "scorecam":
            cam.batch_size = batch_size  # masked copies per forward pass
        # A network exported for one batch size runs it only: its hooks would see each
        # chunk's activations, so every call gets exactly that many images (the last
        # padded with copies of its final image, dropped again).
        fixed = getattr(model, "fixed_batch", None)
        step = fixed or batch_size
        try:
            for s in range(0, n, step):
                x = images[s:s + step].detach().to(device, torch.float32)
                k = x.shape[0]
                chunk_targets = None if targets is None else list(targets[s:s + step])
                if fixed and k < fixed:
                    x = torch.cat([x, x[-1:].expand(fixed - k, *x.shape[1:])])
                    if chunk_targets is not None:
                        chunk_targets += [chunk_targets[-1]] * (fixed - k)
                x.requires_grad_(True)  # weights are frozen: the graph hangs on the input
                t = None if chunk_targets is None else [ClassifierOutputTarget(c)
                                                        for c in chunk_targets]
                cam.raw_maps = []
                with contextlib.redirect_stderr(io.StringIO()):  # ScoreCAM's tqdm bars
                    try:
                        out = cam(input_tensor=x, targets=t)
                    except (ValueError, IndexError, RuntimeError) as e:
                        if "out of memory" in str(e):
                            raise
                        raise _layer_error(model, target_layer, e) from None
                cams.append(torch.from_numpy(np.ascontiguousarray(out[:k], dtype=np.float32)))
                raws.append(torch.from_numpy(np.ascontiguousarray(cam.raw_maps[-1][:k],
                                                                  dtype=np.float32)))
                if return_logits:
                    logits.append(cam.outputs.detach().float().cpu()[:k])
        finally:
            cam.activations_and_grads.release()
    h, w = images.shape[-2:]
    out = [torch.cat(cams) if cams else torch.zeros(0, h, w)]
    if raw:
        out.append(torch.cat(raws) if raws else torch.zeros(0, 1, 1))
    if return_logits:
        out.append(torch.cat(logits) if logits else torch.zeros(0, 0))
    return out[0] if len(out) == 1 else tuple(out)


def _recording(cls: type) -> type:
    """``cls`` whose raw per-layer maps (after ReLU, before pytorch-grad-cam's min-max
    scaling and resize) are kept in ``self.raw_maps``: its one hook, ``get_cam_image``."""
    class Recording(cls):
        def get_cam_image(self, *args, **kwargs):
            m = super().get_cam_image(*args, **kwargs)
            self.raw_maps.append(np.maximum(m, 0))
            return m
    Recording.__name__ = f"Recording{cls.__name__}"
    return Recording


def finer_layer(model: nn.Module, image: torch.Tensor, layer: str | None = None,
                min_side: int = MIN_MAP_SIDE) -> tuple[str | None, tuple[int, int]]:
    """(name, map size) of the last convolutional block before the CAM layer whose output
    is at least ``min_side`` on both sides, when the CAM layer's own map is smaller; (None,
    its size) when the CAM layer is fine already or no such block exists. ``image``:
    1×3×H×W. Names are relative to ``model.net`` for a Classifier (e.g. ``layer3``)."""
    root = getattr(model, "net", model)
    target = resolve_layer(model, layer)
    sizes: dict[str, tuple[int, int]] = {}
    order: list[str] = []
    hooks = []
    for name, mod in root.named_modules():
        if name and any(isinstance(m, nn.Conv2d) for m in mod.modules()):
            def hook(_m, _i, out, name=name):
                if isinstance(out, torch.Tensor) and out.ndim == 4:
                    sizes[name] = tuple(out.shape[-2:])
                    order.append(name)
            hooks.append(mod.register_forward_hook(hook))
    target_name = next((n for n, m in root.named_modules() if m is target), None)
    try:
        with torch.no_grad(), cam_mode(model):
            model(image.to(next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    if target_name is None:  # the target is not inside root
        return None, (0, 0)
    own = sizes.get(target_name, (0, 0))
    if min(own) >= min_side or target_name not in order:
        return None, own
    before = order[:order.index(target_name)]
    fine = [n for n in before if min(sizes[n]) >= min_side
            and not (target_name + ".").startswith(n + ".")]
    return (fine[-1], sizes[fine[-1]]) if fine else (None, own)
