"""Warnings for runs that are obviously broken yet pass quietly: a clean accuracy no better
than guessing (a forgotten ``--weights``, mean/std on the wrong scale, classes in another
order) and mean/std that cannot be statistics of images in [0, 1]. The evaluation prints
them (console) and the report shows them on its first screen; both read them from here
(the store layer, which both may import, as they read what it stores).

>>> chance_warning("m", correct=1000, n=10000, k=10)[:46]
"model 'm': clean accuracy 10.0 % on 10000 imag"
>>> chance_warning("m", correct=9000, n=10000, k=10) is None
True
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from scipy.stats import binom

from .keys import CLEAN, MAIN, dataset_role

# A clean accuracy whose one-sided binomial test against 1/K (the accuracy of guessing)
# has p at or above this is "not above chance". 1 %: a model at 11 % on 10 classes and 2000
# images (p = 0.07) is flagged; one at 15 % (p = 2e-12) is not.
CHANCE_ALPHA = 0.01


def chance_warning(model: str, correct: int, n: int, k: int) -> str | None:
    """One line when ``correct`` of ``n`` clean images is not significantly more than a
    ``k``-class guess would get (one-sided exact binomial test, ``CHANCE_ALPHA``)."""
    if n < 1 or k < 2:
        return None
    p = float(binom.sf(correct - 1, n, 1.0 / k))  # P(X >= correct) under guessing
    if p < CHANCE_ALPHA:
        return None
    return (f"model {model!r}: clean accuracy {100 * correct / n:.1f} % on {n} images is not "
            f"above chance (1/{k} = {100 / k:.1f} %; binomial p = {p:.2g}): a forgotten "
            "--weights, mean/std on the wrong scale, or classes in another order?")


def statistics_warning(model: str, mean: Sequence[float], std: Sequence[float]) -> str | None:
    """One line when mean/std cannot describe images in [0, 1]: a mean outside [0, 1] or
    a std above 1 (statistics on the 0-255 scale give ~10 % and pass quietly)."""
    if all(0.0 <= m <= 1.0 for m in mean) and all(0.0 < s <= 1.0 for s in std):
        return None
    scale = " (0-255 scale? divide by 255)" if max(list(mean) + list(std)) > 1.5 else ""
    return (f"model {model!r}: mean {_fmt(mean)} / std {_fmt(std)} are not statistics of "
            f"images in [0, 1]{scale}; failmodes feeds the network images in [0, 1] "
            "normalised by them")


def sanity_warnings(models: Iterable[dict], acc: Iterable[dict]) -> list[str]:
    """Every warning of a run: ``models`` as the store lists them (name, class_names,
    meta.provenance with mean/std), ``acc`` its accuracy rows (model, dataset, stressor,
    n, accuracy); only the clean cells of the evaluated (main) split are tested."""
    out = []
    models = list(models)
    k = {m["name"]: len(m["class_names"]) for m in models}
    for m in models:
        prov = (m.get("meta") or {}).get("provenance") or {}
        if prov.get("mean") and prov.get("std"):
            w = statistics_warning(m["name"], prov["mean"], prov["std"])
            if w:
                out.append(w)
    for r in acc:
        if r["stressor"] != CLEAN or r["model"] not in k or dataset_role(r["dataset"]) != MAIN:
            continue
        w = chance_warning(r["model"], round(r["accuracy"] * r["n"]), int(r["n"]), k[r["model"]])
        if w:
            out.append(w)
    return out


def _fmt(v: Sequence[float]) -> str:
    return "(" + ", ".join(f"{x:.4g}" for x in v) + ")"
