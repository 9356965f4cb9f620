"""The model-randomisation sanity check of Adebayo et al. (2018), run on every analysed model.

Cascading randomisation: re-initialise the model's parameterised blocks one after another
from the output back to the input (a copy: the analysed model is never touched), and after
each step compute the CAMs of the same images for the same classes (the original model's
predictions). A saliency method that explains the *model* must lose its maps as the
weights go; one that only reflects the input (an edge detector) keeps them.

The end of the cascade (every block random) is the easiest point to pass, so the rule is
applied at three points (``judge_cascade``): after the classifier alone (step 1), after the
last stage (the blocks that share step 2's parent, e.g. ``layer4.*``), and at the end. The
check passes when the mean Spearman correlation with the original maps is below
``PASS_RHO`` at all three.

>>> r = cascading_randomisation(model, images)                       # doctest: +SKIP
>>> r["passed"], r["first_step"]["spearman"], r["final_spearman"]    # doctest: +SKIP
(True, 0.21, 0.08)
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from ._core import compute_cams
from ._measures import spearman, upsample

PASS_RHO = 0.5          # mean Spearman with the original maps at each judged step
RANDOM_SEED = 0         # re-initialisation seed (the same random weights every run)


def blocks(model: nn.Module) -> list[str]:
    """Names (in ``model.net``, else ``model``) of the cascade's steps, input to output:
    each top-level child with parameters, or its children when it has several with
    parameters (ResNet stages → their blocks)."""
    root = getattr(model, "net", model)
    out: list[str] = []
    for name, child in root.named_children():
        if not any(True for _ in child.parameters()):
            continue
        inner = [n for n, c in child.named_children() if any(True for _ in c.parameters())]
        out += [f"{name}.{n}" for n in inner] if len(inner) > 1 else [name]
    return out


def _reinit(module: nn.Module) -> None:
    for m in module.modules():
        if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
            m.reset_parameters()
        elif any(True for _ in m.parameters(recurse=False)):
            # A module with no reset_parameters (the submodules of an unflattened .pt2 are
            # graph interpreters): its tensors redrawn at their own scale, which destroys
            # what was learned as a re-initialisation does.
            with torch.no_grad():
                for p in m.parameters(recurse=False):
                    p.normal_(0.0, max(float(p.std()) if p.numel() > 1 else 0.0, 1e-2))
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()


def cascading_randomisation(model: nn.Module, images: torch.Tensor, *,
                            method: str = "gradcam", layer: str | None = None,
                            batch_size: int = 128) -> dict:
    """The cascade on ``images`` (N×3×H×W in [0, 1]); returns ``{"passed", "final_spearman",
    "curve": [{"step", "randomised", "spearman"}, ...], "n_images"}`` (step 0: none).

    ``layer`` names the CAM layer inside the model (as for ``compute_cams``); the copy is
    hooked at the same name."""
    size = (images.shape[-2], images.shape[-1])
    with torch.no_grad():
        targets = model(images.to(next(model.parameters()).device)).argmax(1).cpu()
    _, raw0 = compute_cams(model, images, targets, method=method, layer=layer,
                           batch_size=batch_size, raw=True)
    ref = upsample(raw0, size)
    work = copy.deepcopy(model)
    root = getattr(work, "net", work)
    layer_name = layer if layer is not None else _layer_name(model)
    curve: list[dict[str, Any]] = [{"step": 0, "randomised": "none", "spearman": 1.0}]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        for k, name in enumerate(reversed(blocks(work)), 1):
            _reinit(root.get_submodule(name))
            _, raw = compute_cams(work, images, targets, method=method, layer=layer_name,
                                  batch_size=batch_size, raw=True)
            rho = spearman(upsample(raw, size), ref)
            # A constant map (all weights negative, say) keeps no ranking of the original.
            curve.append({"step": k, "randomised": name,
                          "spearman": float(np.mean(np.nan_to_num(rho, nan=0.0)))})
    judged = judge_cascade(curve, last_stage=last_stage_of([c["randomised"] for c in curve[1:]]))
    return {**judged, "final_spearman": curve[-1]["spearman"], "curve": curve,
            "n_images": int(images.shape[0]), "pass_rho": PASS_RHO}


def last_stage_of(steps: list[str]) -> tuple[str, ...]:
    """The cascade steps of the last stage: step 2 and the following steps with the same
    parent (``layer4.1``, ``layer4.0``); step 2 alone when that parent holds every block
    (a plain ``features`` Sequential) or the cascade is shorter."""
    if len(steps) < 2:
        return tuple(steps[-1:])
    parent = steps[1].rpartition(".")[0]
    stage = [steps[1]]
    for s in steps[2:]:
        if not parent or s.rpartition(".")[0] != parent:
            break
        stage.append(s)
    return tuple(stage[:1]) if len(stage) == len(steps) - 1 and len(stage) > 1 else tuple(stage)


def judge_cascade(curve: list[dict], *, last_stage: tuple[str, ...] = (),
                  pass_rho: float = PASS_RHO) -> dict:
    """The pass rule at the classifier alone (step 1), after ``last_stage`` and at the end:
    ``{"passed", "first_step", "last_stage", "final"}``, each point ``{"step",
    "randomised", "spearman", "passed"}`` (``passed`` overall = all three)."""
    def point(c: dict) -> dict:
        return {**c, "passed": bool(c["spearman"] < pass_rho)}

    steps = curve[1:]
    if not steps:
        return {"passed": False, "first_step": None, "last_stage": None, "final": None}
    in_stage = [c for c in steps if c["randomised"] in set(last_stage)] or steps[:1]
    points = {"first_step": point(steps[0]), "last_stage": point(in_stage[-1]),
              "final": point(steps[-1])}
    return {**points, "passed": all(p["passed"] for p in points.values())}


def _layer_name(model: nn.Module) -> str | None:
    """The name of the model's CAM layer inside ``model.net`` (so a copy can be hooked)."""
    target = getattr(model, "cam_layer", None)
    root = getattr(model, "net", model)
    return next((n for n, m in root.named_modules() if m is target and n), None)
