"""The ``claims:`` list of a study file, read and validated at load time: six kinds of
:class:`Claim` (see :mod:`failmodes.analysis.claims` for the YAML forms), each checked for
its keys, models, corruptions and regimes before any work."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import FailmodesError
from ..curves.regimes import GRACEFUL_DROP_POINTS, REGIMES

KINDS = ("drop", "regime", "harder", "graceful", "gentlest", "more_robust", "cam_drift",
         "cam_localisation", "errors_concentrate")
# The one target each attention kind takes (analysis/cam/localisation.py tells them apart).
CAM_TARGETS = {"cam_drift": "background", "cam_localisation": "weakens"}
POPULATIONS = ("images", "kinds")
_KEYS = {
    "drop": {"drop", "model", "severity", "at_least", "about", "unit", "text"},
    "regime": {"regime", "model", "is", "text"},
    "harder": {"harder", "than", "model", "population", "text"},
    "graceful": {"graceful", "model", "max_drop", "text"},
    "gentlest": {"gentlest", "model", "top", "text"},
    "more_robust": {"more_robust", "than", "on", "by", "text"},
    "cam_drift": {"cam_drift", "model", "severity", "text"},
    "cam_localisation": {"cam_localisation", "model", "severity", "text"},
    "errors_concentrate": {"errors_concentrate", "model", "classes", "confused_with",
                           "stressor", "severity", "text"},
}


class ClaimError(ValueError, FailmodesError):
    """A claim that cannot be checked (unknown kind, model, corruption or regime)."""


@dataclass(frozen=True)
class Claim:
    kind: str
    subject: Any                       # the corruption(s), model or target named by the kind key
    model: str | None = None
    params: dict = field(default_factory=dict)
    text: str = ""

    def describe(self) -> str:
        if self.text:
            return self.text
        p = self.params
        if self.kind == "drop":
            unit = " points" if p["unit"] == "points" else " (relative to clean)"
            form = "at_least" if "at_least" in p else "about"
            amount = (f"{p[form]:g}{unit}" if p["unit"] == "points"
                      else f"{100 * p[form]:g} %{unit}")
            return (f"{self.model} loses {form.replace('_', ' ')} {amount} of accuracy under "
                    f"{self.subject} at severity {p['severity']:g}")
        if self.kind == "regime":
            return f"{self.subject} degrades {self.model} as {p['is']}"
        if self.kind == "harder":
            who = " (as kinds of corruption)" if p.get("population") == "kinds" else ""
            return (f"for {self.model}, {', '.join(self.subject)} are more damaging than "
                    f"{', '.join(p['than'])}{who}")
        if self.kind == "gentlest":
            top = "the gentlest quarter" if p.get("top") is None else f"the {p['top']} gentlest"
            return (f"for {self.model}, {', '.join(self.subject)} rank among {top} of all "
                    f"corruptions (mean accuracy over severities 1–5)")
        if self.kind == "graceful":
            return (f"{', '.join(self.subject)} degrade {self.model} gracefully (worst "
                    f"severity within {p.get('max_drop', GRACEFUL_DROP_POINTS):g} points of clean)")
        if self.kind == "more_robust":
            on = "all corruptions" if p["on"] == "all" else ", ".join(p["on"])
            return f"{self.subject} is more robust than {p['than']} on {on} (by {p['by']})"
        if self.kind == "errors_concentrate":
            where = " & ".join(f"{a}: {v}" for a, v in self.subject)
            who = ", ".join(p["classes"]) if p["classes"] else "images"
            how = (f"taken for {' or '.join(p['confused_with'])}" if p["confused_with"]
                   else "misclassified")
            cell = ("clean" if p["stressor"] == "clean"
                    else f"{p['stressor']} at severity {p['severity']:g}")
            return f"for {self.model}, {who} with {where} are {how} more often ({cell})"
        if self.kind == "cam_localisation":
            return (f"{self.model}'s attention on the object weakens (CAM mass leaves the "
                    f"centre) at severity {p['severity']:g}")
        return (f"{self.model}'s attention drifts toward the {self.subject} at severity "
                f"{p['severity']:g} (beyond what diffusion alone gives)")


def normalize_claim_keys(raw: list) -> list:
    """YAML 1.1 reads an unquoted key ``on`` as the boolean true: give it back its name
    (JSON and sorting need string keys)."""
    # "true" is the same key after a trip through JSON (a study.resolved.json saved before).
    return [{("on" if k is True or k == "true" else k): v for k, v in c.items()}
            if isinstance(c, dict) else c for c in (raw or [])]


def parse_claims(raw, *, models: set[str], stressors: set[str] | None = None,
                 where: str = "claims") -> list[Claim]:
    """Validate a study's ``claims:`` list at load time; one-line ClaimError on the first
    unknown kind, key, model, corruption or regime."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ClaimError(f"{where}: must be a list of claims, got {type(raw).__name__}")
    if stressors is None:
        from ...stressors import list_stressors
        stressors = {n for n in list_stressors()}
    return [_parse_one(c, f"{where}[{i}]", models, stressors) for i, c in enumerate(raw)]


def _parse_one(c, where: str, models: set[str], stressors: set[str]) -> Claim:
    if not isinstance(c, dict):
        raise ClaimError(f"{where}: a claim is a mapping such as {{regime: fog, model: M, "
                         f"is: threshold-collapse}}")
    c = normalize_claim_keys([c])[0]
    kinds = [k for k in KINDS if k in c]
    if len(kinds) != 1:
        raise ClaimError(f"{where}: a claim names exactly one of {', '.join(KINDS)}; got "
                         f"{', '.join(map(str, c)) or 'nothing'}")
    kind = kinds[0]
    extra = set(c) - _KEYS[kind]
    if extra:
        raise ClaimError(f"{where}: unknown key {sorted(extra)[0]!r} for a {kind} claim; "
                         f"allowed: {', '.join(sorted(_KEYS[kind]))}")
    text = str(c.get("text", ""))

    def model(key="model"):
        m = c.get(key)
        if m not in models:
            raise ClaimError(f"{where}: {key} {m!r} is not a model of this study "
                             f"({', '.join(sorted(models)) or 'none'})")
        return m

    def corruption(name, key):
        if not isinstance(name, str) or name not in stressors:
            raise ClaimError(f"{where}: {key} names unknown stressor {name!r}")
        return name

    def corruptions(key):
        v = c.get(key)
        v = [v] if isinstance(v, str) else v
        if not isinstance(v, list) or not v:
            raise ClaimError(f"{where}: {key} must be a stressor name or a non-empty list")
        return tuple(corruption(n, key) for n in v)

    def number(key, lo, hi, default=None):
        v = c.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ClaimError(f"{where}: {key} must be a number in [{lo:g}, {hi:g}], got {v!r}")
        return float(v)

    if kind == "drop":
        unit = c.get("unit", "points")
        if unit not in ("points", "relative"):
            raise ClaimError(f"{where}: unit must be points or relative, got {unit!r}")
        hi = 100.0 if unit == "points" else 1.0
        forms = [k for k in ("at_least", "about") if k in c]
        if len(forms) != 1:
            raise ClaimError(f"{where}: a drop claim names exactly one of at_least, about "
                             "(at_least X: one-sided; about X, for 'up to X' or 'about X': "
                             "X inside the interval)")
        return Claim(kind, corruption(c["drop"], "drop"), model(),
                     {"severity": number("severity", 0, 5, 5), "unit": unit,
                      forms[0]: number(forms[0], 0, hi)}, text)
    if kind == "regime":
        if c.get("is") not in REGIMES:
            raise ClaimError(f"{where}: is {c.get('is')!r} is not a regime; choose from "
                             f"{', '.join(REGIMES)}")
        return Claim(kind, corruption(c["regime"], "regime"), model(), {"is": c["is"]}, text)
    if kind == "harder":
        population = c.get("population", "images")
        if population not in POPULATIONS:
            raise ClaimError(f"{where}: population must be images (these corruptions on these "
                             f"images) or kinds (kinds of corruption), got {population!r}")
        return Claim(kind, corruptions("harder"), model(),
                     {"than": corruptions("than"), "population": population}, text)
    if kind == "gentlest":
        top = c.get("top")
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
            raise ClaimError(f"{where}: top must be a whole number of corruptions ≥ 1, "
                             f"got {top!r}")
        return Claim(kind, corruptions("gentlest"), model(), {"top": top}, text)
    if kind == "graceful":
        return Claim(kind, corruptions("graceful"), model(),
                     {"max_drop": number("max_drop", 0, 100, GRACEFUL_DROP_POINTS)}, text)
    if kind == "more_robust":
        on = c.get("on", "all")
        on = "all" if on == "all" else corruptions("on")
        by = c.get("by", "accuracy")
        if by not in ("accuracy", "drop"):
            raise ClaimError(f"{where}: by must be accuracy or drop, got {by!r}")
        a, b = model("more_robust"), model("than")
        if a == b:
            raise ClaimError(f"{where}: more_robust compares two different models")
        return Claim(kind, a, None, {"than": b, "on": on, "by": by}, text)
    if kind == "errors_concentrate":
        return _concentration(c, where, model(), text, corruption, number)
    target = c.get(kind)
    if target != CAM_TARGETS[kind]:
        raise ClaimError(f"{where}: {kind} supports {CAM_TARGETS[kind]!r}, got {target!r}")
    return Claim(kind, target, model(), {"severity": number("severity", 1, 5, 5)}, text)


def _names(c: dict, key: str, where: str) -> tuple[str, ...]:
    v = c.get(key)
    v = [] if v is None else [v] if isinstance(v, str) else v
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ClaimError(f"{where}: {key} must be a class name or a list of them, got {v!r}")
    return tuple(v)


def _concentration(c: dict, where: str, model: str, text: str, corruption, number) -> Claim:
    """``{errors_concentrate: {background: blue}, model, classes, confused_with, stressor,
    severity}``: the slice is 1-2 attribute bins of the slices analysis (class names are
    checked against the model when the claim is checked)."""
    from ..slices import attribute_values
    spec = c.get("errors_concentrate")
    known = attribute_values()
    if not isinstance(spec, dict) or not 1 <= len(spec) <= 2:
        raise ClaimError(f"{where}: errors_concentrate names 1 or 2 attribute bins, e.g. "
                         "{background: blue}")
    for attr, value in spec.items():
        if attr not in known or str(value) not in known[attr]:
            raise ClaimError(f"{where}: errors_concentrate: no bin {attr}: {value}; "
                             + (f"{attr} takes {', '.join(known[attr])}" if attr in known else
                                f"attributes: {', '.join(known)}"))
    stressor = c.get("stressor", "clean")
    stressor = stressor if stressor == "clean" else corruption(stressor, "stressor")
    severity = 0.0 if stressor == "clean" else number("severity", 0, 1e9, 5)
    return Claim("errors_concentrate", tuple((str(a), str(v)) for a, v in spec.items()), model,
                 {"classes": _names(c, "classes", where),
                  "confused_with": _names(c, "confused_with", where),
                  "stressor": stressor, "severity": severity}, text)
