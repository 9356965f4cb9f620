"""Adversarial stressors: FGSM and PGD attacks on the model under test, as one more family.

An attack is a stressor whose severity is its budget ε in natural units: L∞ attacks take ε
in grey levels (ε = 8 means 8/255 of the pixel range), L2 attacks in pixel units (the L2
norm of the perturbation of a [0, 1] image). It attacks the pixel-space ``Classifier``
(normalisation inside the model), so ε means the same for every model. Defaults follow
Madry et al. (2018): a random start in the ε-ball and step size 2.5·ε/steps.

Unlike corruptions, an attack needs the model and the labels, so its cells are per model
(never paired across models). The output obeys the stressor contract: in [0, 1], on the
8-bit grid and inside the ε-ball: the perturbation is truncated toward the clean image when
it meets the grid, so quantisation can only shrink it (rounding would add up to 0.5/255
per pixel, which for L2 on 32×32×3 images is 0.11, a fifth of ε = 0.5).

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
>>> x = torch.rand(2, 3, 8, 8).mul(255).round().div(255)
>>> y = get_stressor("pgd_linf")(x, 8, model=net, labels=torch.tensor([0, 1]))
>>> bool((y - x).abs().max() <= 8 / 255 + 1e-6)
True

For one batch outside any run this is the tensor-level API, as torchattacks users expect,
with ε in grey levels: ``get_stressor("pgd_linf")(x, 8, model=m, labels=y)`` is PGD at
ε = 8/255; ``8/255`` itself (a fraction of the pixel range, below one grey level) is
refused with the value to pass instead, never run as a no-op attack.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .registry import ADVERSARIAL_FAMILY, StressorError, get_stressor, register_stressor

# Budget ranges: beyond half the pixel range (L∞) an "attack" replaces the image; the L2
# cap is that of a 224×224 image moved by ~0.26 per pixel, far past any published budget.
LINF_RANGE = (0.0, 128.0)
L2_RANGE = (0.0, 100.0)

_OPTIONS_DOC = ("options: steps (int ≥ 1), step (step size in ε's unit; default "
                "2.5·ε/steps), restarts (int ≥ 1), random_start (0/1)")


def _loss(model, x: torch.Tensor, labels: torch.Tensor, *, needs_grad: bool = True) -> torch.Tensor:
    """Per-image cross-entropy (N,); its gradient per image depends only on that image in
    eval mode, so batch size never changes an attack beyond float rounding. ``needs_grad``:
    refuse a model that gives no gradients (False for scoring under no_grad)."""
    logits = model(x)
    if needs_grad and not logits.requires_grad:
        raise StressorError("the attack needs gradients through the model, and this model "
                            "gives none (a black-box ONNX or frozen TorchScript model?)")
    return F.cross_entropy(logits.float(), labels, reduction="none")


def _grad(model, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(_loss(model, x, labels).sum(), x)
    return g


def _l2(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)


def _project(x0: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    d = x - x0
    if norm == "linf":
        d = d.clamp(-eps, eps)
    else:
        d = d * (eps / _l2(d)).clamp(max=1.0)
    return (x0 + d).clamp(0.0, 1.0)


def _random_start(x0: torch.Tensor, eps: float, norm: str, rng, restart: int) -> torch.Tensor:
    # The rng draws a new stream per call, so restart r uses the r-th draw of this
    # (stressor, ε, seed, image) key: the same start whatever the batch.
    shape = tuple(x0.shape[1:])
    if norm == "linf":
        d = (rng.uniform(shape) * 2.0 - 1.0).to(x0) * eps
    else:
        # Uniform in the L2 ball: a Gaussian direction times radius ε·u^(1/d).
        z = rng.normal(shape).to(x0)
        u = rng.uniform(()).to(x0).view(-1, 1, 1, 1)
        d = z / _l2(z) * eps * u.pow(1.0 / math.prod(shape))
    return (x0 + d).clamp(0.0, 1.0)


def _step(x: torch.Tensor, g: torch.Tensor, alpha: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return x + alpha * g.sign()
    return x + alpha * g / _l2(g)


def _snap(x0: torch.Tensor, x: torch.Tensor, eps: float | None = None) -> torch.Tensor:
    """Onto the 8-bit grid, never leaving the ε-ball (x0 is on the grid).

    L∞ (``eps=None``): the perturbation is truncated toward zero, so no pixel moves further
    than before. L2 (``eps`` given): truncation would drop every sub-level component and
    shrink ε by ~7 % on 32 px images (measured: a 5-point weaker attack), so it rounds to
    the nearest level and, where that leaves the ball, moves the components that rounding
    pushed furthest outward back one level until the norm fits: the grid point nearest to
    the float perturbation that stays in the ball, up to that greedy order.
    """
    q0 = torch.round(x0 * 255.0)
    v = x * 255.0 - q0
    if eps is None:
        # The 1e-4 grey-level slack keeps 7.99999 (float error at an ε = 8 edge) at 8.
        d = v.sign() * (v.abs() + 1e-4).floor()
    else:
        d = _round_into_l2_ball(v, eps * 255.0)
    return ((q0 + d).clamp(0, 255) / 255.0).to(x0.dtype)


def _round_into_l2_ball(v: torch.Tensor, radius: float) -> torch.Tensor:
    n = v.shape[0]
    d = torch.round(v).flatten(1)
    vf = v.flatten(1)
    over = (d.square().sum(1) - radius ** 2).clamp_min(0)        # squared norm to shed
    # Moving an outward-rounded level back toward zero sheds 2|d| - 1 of squared norm.
    away = (d.abs() > vf.abs()) & (d != 0)
    excess = torch.where(away, d.abs() - vf.abs(), torch.full_like(vf, -1.0))
    order = excess.argsort(dim=1, descending=True)
    gain = torch.where(away, 2 * d.abs() - 1, torch.zeros_like(d)).gather(1, order)
    need = (gain.cumsum(1) - gain) < over.view(n, 1)             # still over before this one
    pick = torch.zeros_like(away).scatter(1, order, need) & away
    d = d - pick * d.sign()
    return d.view_as(v)


def attack(x0: torch.Tensor, eps: float, *, model, labels: torch.Tensor, rng, norm: str,
           steps: int, step: float | None, restarts: int, random_start: bool) -> torch.Tensor:
    """Untargeted PGD (FGSM is steps=1, step=ε, no random start) on ``model``.

    ``x0``: N×3×H×W in [0, 1]; ``eps`` in [0, 1] units (L∞ already divided by 255).
    Over restarts, each image keeps the run with the highest final loss. Returns the
    adversarial images (not yet snapped to the grid).
    """
    alpha = 2.5 * eps / steps if step is None else step
    # The grid evaluates under inference_mode; attacks need autograd, so they leave it and
    # work on ordinary copies of the inputs.
    with torch.inference_mode(False), torch.enable_grad():
        x0 = x0.clone()
        labels = labels.clone()
        best = x0.clone()
        best_loss = torch.full((x0.shape[0],), -math.inf, device=x0.device)
        for r in range(restarts):
            x = _random_start(x0, eps, norm, rng, r) if random_start else x0.clone()
            for _ in range(steps):
                g = _grad(model, x, labels)
                x = _project(x0, _step(x, g, alpha, norm), eps, norm).detach()
            if restarts == 1:
                return x        # nothing to choose between: skip the scoring forward pass
            with torch.no_grad():
                loss = _loss(model, _snap(x0, x, None if norm == "linf" else eps), labels,
                             needs_grad=False)
            better = loss > best_loss
            best = torch.where(better.view(-1, 1, 1, 1), x, best)
            best_loss = torch.where(better, loss, best_loss)
    return best


def attack_settings(name: str, eps: float) -> dict:
    """What the attack ``name`` (options included, e.g. ``pgd_linf[steps=20]``) does at
    budget ``eps`` (natural units): ``norm`` ("linf" | "l2"), ``steps``, ``step`` (step
    size in ε's unit: grey levels for L∞, pixel units for L2), ``restarts`` and
    ``random_start`` (bool). The attack itself runs with exactly these numbers.

    >>> attack_settings("pgd_linf", 8)["step"]
    2.0
    """
    st = get_stressor(name)
    if st.base_name not in _ATTACKS:
        raise StressorError(f"{name} is not an attack ({', '.join(_ATTACKS)} are)")
    return _settings(st.base_name, dict(st.options), eps)


def _settings(name: str, options: dict, eps: float) -> dict:
    norm, fgsm = _ATTACKS[name]
    if fgsm:  # one signed-gradient step of size ε from the clean image
        return {"norm": norm, "steps": 1, "step": float(eps), "restarts": 1,
                "random_start": False}
    steps, step = int(options["steps"]), options.get("step")
    return {"norm": norm, "steps": steps,
            "step": 2.5 * float(eps) / steps if step is None else float(step),
            "restarts": int(options["restarts"]), "random_start": bool(options["random_start"])}


def _make(name: str):
    norm = _ATTACKS[name][0]

    def op(x, params, rng, *, model, labels, options):
        if norm == "linf" and 0 < params[0] < 1:
            # Below one grey level no pixel moves on the 8-bit grid: ε = 8/255 given as a
            # fraction (torchattacks' unit) would be a silent no-op attack. Say which unit.
            raise StressorError(
                f"{name}: ε = {params[0]:.4g} is in grey levels (/255 units), and below 1 it "
                f"moves no pixel of an 8-bit image; if you meant {params[0]:.4g} of the pixel "
                f"range ({params[0] * 255:.3g}/255), pass {params[0] * 255:.3g}")
        s = _settings(name, options, params[0])
        scale = 255.0 if norm == "linf" else 1.0     # L∞ ε and step are in grey levels
        eps = params[0] / scale
        y = attack(x, eps, model=model, labels=labels, rng=rng, norm=norm, steps=s["steps"],
                   step=s["step"] / scale, restarts=s["restarts"],
                   random_start=s["random_start"])
        return _snap(x, y, None if norm == "linf" else eps)
    return op


# name -> (norm, FGSM?): the one list of the attacks this module registers.
_ATTACKS = {"fgsm_linf": ("linf", True), "pgd_linf": ("linf", False), "pgd_l2": ("l2", False)}
_PGD_OPTIONS = {"steps": 10, "step": None, "restarts": 1, "random_start": 1}

register_stressor("fgsm_linf", family=ADVERSARIAL_FAMILY, unit="/255 (L∞ ε)",
                  value_range=LINF_RANGE, needs_model=True, random=False,
                  description="FGSM (Goodfellow et al. 2015): one signed-gradient step of size ε, "
                              "L∞ ε in grey levels /255")(_make("fgsm_linf"))
register_stressor("pgd_linf", family=ADVERSARIAL_FAMILY, unit="/255 (L∞ ε)",
                  value_range=LINF_RANGE, needs_model=True, options=_PGD_OPTIONS,
                  description="PGD (Madry et al. 2018), L∞ ε in grey levels /255, 10 steps of "
                              "2.5·ε/steps from a random start; " + _OPTIONS_DOC)(
    _make("pgd_linf"))
register_stressor("pgd_l2", family=ADVERSARIAL_FAMILY, unit="L2 ε (pixel units)",
                  value_range=L2_RANGE, needs_model=True, options=_PGD_OPTIONS,
                  description="PGD (Madry et al. 2018), L2 ε in pixel units of [0, 1] images, "
                              "10 steps of 2.5·ε/steps from a random start; " + _OPTIONS_DOC)(
    _make("pgd_l2"))

__all__ = ["attack", "attack_settings", "get_stressor"]
