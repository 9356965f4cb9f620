"""Single-image probes: sweep one image through a stressor and watch the prediction.

For each value the image is stressed (seed and dataset index 0), classified, and the
top-5 kept; the figures are a strip of the stressed images with their top-1 label and
confidence, and the curve of the probability of the target class (the clean top-1, or
``label``) vs the value. Images whose size differs from the model input are resized
(shorter side to the input size, bilinear with antialiasing, then a centre crop), and the
figure says so. The stressor's unit is stated on the figure; for Gaussian noise,
``space`` picks the pixel-space (``gaussian_noise_std``, std in [0, 1] pixel units) or
the normalised-space stressor (``gaussian_noise_std_normalized``, std in units of the
ImageNet-normalised input, as the seed's "std 0.2·i after normalisation").

>>> r = probe("skimage:chelsea", "efficientnet_lite0", "rotation", "-180:180:15",
...           out_dir="out/probe")                          # doctest: +SKIP
>>> r["target"]["name"], r["rows"][0]["top1"]["name"]       # doctest: +SKIP
('Egyptian cat', ...)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .._device import resolve_device
from ..errors import FailmodesError
from ..ranges import parse_values
from ..values import OptionValueError
from ..values import repeats as check_repeats
from ._figures import new_figure, save, slug
from .registry import write_result
from .superclasses import resolve_superclasses

NOISE_SPACES = {"pixel": "gaussian_noise_std", "normalized": "gaussian_noise_std_normalized"}


class ProbeError(ValueError, FailmodesError):
    """Bad probe input (image, values, label, space); one line naming it and the fix."""


def load_probe_image(image) -> tuple[np.ndarray, str]:
    """(uint8 H×W×3, source text) from a path, ``skimage:NAME`` (e.g. ``skimage:chelsea``),
    a uint8 H×W×3 array, or a float 3×H×W tensor in [0, 1]."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
            raise ProbeError(f"image tensor must be float 3×H×W in [0, 1], got "
                             f"{tuple(image.shape)} {image.dtype}")
        arr = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return arr, "tensor"
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ProbeError(f"image array must be uint8 H×W×3, got {image.shape} {image.dtype}")
        return image, "array"
    s = str(image)
    if s.startswith("skimage:"):
        import skimage.data
        name = s.split(":", 1)[1]
        fn = getattr(skimage.data, name, None)
        if fn is None or not callable(fn):
            raise ProbeError(f"no image skimage.data.{name}; try skimage:chelsea, "
                             "skimage:astronaut or skimage:coffee")
        arr = np.asarray(fn())
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        return np.ascontiguousarray(arr[..., :3]).astype(np.uint8), s
    from ..data import load_image
    if not os.path.isfile(s):
        raise ProbeError(f"image {s} not found (give a file or skimage:NAME)")
    return load_image(s), s


def fit_to_input(img: np.ndarray, size: int) -> tuple[torch.Tensor, str]:
    """uint8 H×W×3 → float 1×3×size×size in [0, 1] on the 8-bit grid, and what was done."""
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return x, f"{w}×{h}, the model's input size: not resized"
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True,
                                        align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[..., top:top + size, left:left + size]
    x = torch.round(x.clamp(0, 1) * 255) / 255
    return x, (f"{w}×{h} resized: shorter side to {size} px (bilinear, antialiased), "
               f"centre crop {size}×{size}")


def _resolve_stressor(stressor, space: str):
    from ..stressors import get_stressor
    name = stressor if isinstance(stressor, str) else stressor.name
    if space != "auto":
        if space not in NOISE_SPACES:
            raise ProbeError(f"--space {space!r}: choose auto, pixel or normalized")
        if name not in NOISE_SPACES.values():
            raise ProbeError(f"--space {space} only applies to the Gaussian noise sweeps "
                             f"({', '.join(NOISE_SPACES.values())}), not {name!r}")
        name = NOISE_SPACES[space]
    return get_stressor(name)


def _space_text(st, size: int) -> str:
    if st.name == NOISE_SPACES["normalized"]:
        return "noise std in normalised-input units (ImageNet mean/std)"
    if st.name == NOISE_SPACES["pixel"]:
        return "noise std in [0, 1] pixel units"
    if st.is_corruption:
        from ..stressors.registry import TABLE_SOURCES
        table = TABLE_SOURCES[st.table_family(size)]
        return f"severity, {table} levels"
    return st.unit


def _resolve_label(label, names: list[str]) -> int:
    if isinstance(label, str) and not label.lstrip("-").isdigit():
        if label not in names:
            raise ProbeError(f"--label {label!r} is not a class of this model "
                             "(give a class index or its exact name)")
        return names.index(label)
    k = int(label)
    if not 0 <= k < len(names):
        raise ProbeError(f"--label {k} is outside 0..{len(names) - 1}")
    return k


def probe(image, model, stressor, values, *, label: int | str | None = None,
          space: str = "auto", seed: int = 0, repeats: int = 1, device: str = "auto",
          out_dir: str | os.PathLike | None = None, batch_size: int = 16) -> dict:
    """Sweep one image through ``stressor`` at ``values`` and record the predictions.

    image: path, ``skimage:NAME``, uint8 H×W×3 array or float 3×H×W tensor in [0, 1].
    model: a Classifier in eval mode, a registry name or a checkpoint path.
    stressor: registry name (e.g. ``rotation``, ``gaussian_noise_std_normalized``).
    values: numbers or a ``"a:b:step"`` / ``"a,b"`` string, in the stressor's unit.
    label: target class (index or name); default the clean image's top-1.
    space: ``auto`` (the stressor as named) or ``pixel`` / ``normalized`` (noise sweeps).
    repeats: probabilities are averaged over this many stressor draws (seeds ``seed`` …
        ``seed + repeats − 1``), which smooths random stressors; the strip shows the first
        draw's images, each titled with that draw's own top-1 and probability (so every
        image matches the numbers on it); rows' ``first_draw`` holds them too.
    out_dir: when given, writes ``probe_<stressor>.json`` and the strip and curve figures.
    Returns {image, model, stressor, space, values, target, clean_top5, rows, figures};
    each row: value, top1, p_target, p_target_superclass (summed over the target's
    superclass, None without one), top5; a class entry is {id, name, prob, superclass}
    (superclass from the built-in CIFAR-10 / ImageNet maps, else None).
    """
    from ..models import Classifier, create_model
    vals = parse_values(values, where="--values")
    try:
        repeats = check_repeats(repeats)
    except OptionValueError as e:
        raise ProbeError(str(e)) from None
    st = _resolve_stressor(stressor, space)
    for v in vals:
        st.check_value(v)  # fail before any model work, naming the bad value
    img, source = load_probe_image(image)
    if isinstance(model, Classifier):
        net, model_name = model, model.arch
        if net.training:
            raise ProbeError("probe needs the model in eval mode; call model.eval() first")
        dev = next(net.parameters()).device
    else:
        dev = resolve_device(device)
        net, model_name = create_model(str(model)).to(dev).eval(), str(model)
    names = net.class_names
    x, resize_note = fit_to_input(img, net.input_size)
    x = x.to(dev)
    idx = torch.zeros(1, dtype=torch.int64)
    with torch.inference_mode():
        clean = torch.softmax(net(x).float(), 1)[0].cpu().numpy()
        draws = []
        for r in range(repeats):
            stressed_r = torch.cat([st(x, v, seed=seed + r, indices=idx) for v in vals])
            draws.append(torch.cat([torch.softmax(net(stressed_r[i:i + batch_size]).float(), 1)
                                    for i in range(0, len(vals), batch_size)]).cpu().numpy())
            if r == 0:
                stressed = stressed_r
    probs = np.mean(draws, axis=0)
    if label is None:
        target, why = int(clean.argmax()), "clean top-1"
    else:
        target, why = _resolve_label(label, names), "given label"
    smap = resolve_superclasses(None, names)
    group = (lambda c: smap.names[smap.group_of[c]] if smap.group_of[c] >= 0 else None
             ) if smap is not None else (lambda c: None)
    top5 = lambda p: [{"id": int(c), "name": names[c], "prob": float(p[c]),  # noqa: E731
                       "superclass": group(c)} for c in np.argsort(-p)[:5]]
    members = (np.flatnonzero(smap.group_of == smap.group_of[target])
               if smap is not None and smap.group_of[target] >= 0 else None)
    p_group = (lambda p: float(p[members].sum())) if members is not None else (lambda p: None)
    rows = [{"value": v, "top1": top5(p)[0], "p_target": float(p[target]),
             "p_target_superclass": p_group(p), "top5": top5(p),
             "first_draw": {"seed": seed, "top1": top5(p0)[0], "p_target": float(p0[target])}}
            for v, p, p0 in zip(vals, probs, draws[0])]
    result = {"image": {"source": source, "size": [int(img.shape[1]), int(img.shape[0])],
                        "input_size": net.input_size, "resize": resize_note},
              "model": model_name, "stressor": st.name, "unit": st.unit,
              "space": _space_text(st, net.input_size), "seed": seed, "repeats": repeats, "values": vals,
              "target": {"id": target, "name": names[target], "chosen_as": why,
                         "clean_prob": float(clean[target]), "superclass": group(target)},
              "clean_top5": top5(clean), "rows": rows, "figures": []}
    if out_dir is not None:
        out_dir = Path(out_dir)
        images = stressed.permute(0, 2, 3, 1).cpu().numpy()
        result["figures"] = [plot_strip(result, images, out_dir), plot_curve(result, out_dir)]
        write_result(out_dir, f"probe_{slug(st.name)}", result)
    return result


def plot_strip(result: dict, images: np.ndarray, out_dir: Path) -> dict:
    """The stressed image at each value with its top-1 label and confidence: those of the
    drawn image itself (the first draw), never the mean over draws."""
    rows = result["rows"]
    nr = -(-len(rows) // 9)
    nc = -(-len(rows) // nr)   # balanced rows of at most 9
    fig = new_figure(1.75 * nc, 2.1 * nr + 0.6)
    tgt = result["target"]["id"]
    for i, (r, img) in enumerate(zip(rows, images)):
        ax = fig.add_subplot(nr, nc, i + 1)
        ax.imshow(img)
        t = r["first_draw"]["top1"] if "first_draw" in r else r["top1"]
        ax.set_title(f"{r['value']:g}\n{t['name'][:16]} {t['prob']:.2f}", fontsize=7,
                     color="black" if t["id"] == tgt else "tab:red")
        ax.axis("off")
    n = result.get("repeats", 1)
    draw = (f"; one draw (seed {result['seed']}) of the {n} averaged in the curve and table"
            if n > 1 else "")
    fig.suptitle(f"{result['model']} under {result['stressor']} ({result['space']}); "
                 f"red = top-1 is not {result['target']['name']}{draw}\n"
                 f"{result['image']['source']}: {result['image']['resize']}", fontsize=8)
    fig.tight_layout()
    return save(fig, out_dir, f"probe_strip_{slug(result['stressor'])}.png",
                f"{result['image']['source']} under {result['stressor']}: each image with its "
                f"own top-1 label and confidence ({result['space']})"
                + (f"; the images are draw seed={result['seed']}, the table and curve "
                   f"average {n} draws." if n > 1 else "."))


def plot_curve(result: dict, out_dir: Path) -> dict:
    """Probability of the target class and top-1 confidence vs value."""
    v = np.array(result["values"])
    fig = new_figure(6.0, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    tgt = result["target"]
    ax.plot(v, [r["p_target"] for r in result["rows"]], "o-", ms=3,
            label=f"p({tgt['name']}) [{tgt['chosen_as']}]")
    ax.plot(v, [r["top1"]["prob"] for r in result["rows"]], "--", color="tab:gray",
            label="top-1 confidence")
    if tgt.get("superclass"):
        ax.plot(v, [r["p_target_superclass"] for r in result["rows"]], ":", color="tab:green",
                label=f"p(any of {tgt['superclass']})")
    off = [r["top1"]["id"] != tgt["id"] for r in result["rows"]]
    if any(off):
        ax.scatter(v[off], [r["top1"]["prob"] for r, o in zip(result["rows"], off) if o],
                   color="tab:red", s=14, zorder=3, label="top-1 is another class")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{result['stressor']} value ({result['space']})", fontsize=8)
    ax.set_ylabel("probability")
    ax.legend(fontsize=7)
    avg = f", mean of {result['repeats']} draws" if result.get("repeats", 1) > 1 else ""
    ax.set_title(f"{result['model']}: {result['image']['source']}{avg}\n"
                 f"{result['image']['resize']}", fontsize=8)
    fig.tight_layout()
    return save(fig, out_dir, f"probe_curve_{slug(result['stressor'])}.png",
                f"Probability of {tgt['name']} vs {result['stressor']} value "
                f"({result['space']}).")
