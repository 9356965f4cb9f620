"""The report's first screen: for every model, the answer at a glance — the headline
metrics every analysis declares (clean accuracy, CIFAR-10-C error, mCE, calibration under
shift, ...), the three worst corruptions with their regimes —
the study's claims with their verdicts, two large figures and, when the study attacks its
models, each model's robust accuracy under the strongest attack cell. It is the report's
summary; the sections after it are the evidence, and no table there repeats it.

Every number is read, never recomputed: each registered analysis's declared
``Headline``s (``per_model[model][key]``, in report order, with their label, unit and note),
the per-corruption accuracies from the ``metrics`` analysis, regimes from ``curves``,
verdicts from ``claims``. Where an analysis is missing the card says so instead of
inventing a number.

**The claims slot.** An analysis named ``claims`` (issue 19) is rendered when present: its
``tables["claims"]`` rows (``study.claims.Verdict`` flattened to scalars), each with
``claim`` (the sentence checked), ``verdict`` (``supported`` | ``contradicted`` |
``inconclusive``), ``reason`` or ``evidence`` (one line: why) and optionally ``model`` or
``models`` (a string) and ``p_value``.

>>> fs = first_screen(run)            # doctest: +SKIP
>>> fs.models[0].worst[0].regime      # doctest: +SKIP
'threshold-collapse'
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis.registry import Headline, list_analyses
from ._collect import RunData
from ._format import (
    Figure,
    evaluated_severities,
    figure,
    fmt,
    format_headline,
    pct,
    severities_text,
)
from .first_figures import corruption_overview, worst_curves
from .forward import forward_of

CLAIMS = "claims"
CLAIMS_TABLE = "claims"
VERDICTS = ("supported", "contradicted", "inconclusive")
N_WORST = 3
FIG_DIR = "figures"


@dataclass
class Worst:
    corruption: str
    family: str
    accuracy: float | None          # mean accuracy over severities 1–5, fraction
    regime: str | None
    detail: str = ""                # "break at 3.1 · −42 pt"


@dataclass
class HeadlineValue:
    """One declared headline of one analysis for one model."""

    analysis: str
    headline: Headline
    value: float | None
    note: str = ""                  # the headline's definition, or why the value is absent


@dataclass
class ModelCard:
    model: str
    baseline: bool
    clean_accuracy: float | None    # fraction, of the store's clean cell (overview figure)
    headlines: list[HeadlineValue] = field(default_factory=list)
    worst: list[Worst] = field(default_factory=list)
    # The attack cell of adversarial.headline (None: the study has no attack cells).
    attack: dict | None = None
    forward: str = ""               # which forward pass was evaluated (forward.forward_of)


@dataclass
class Claim:
    claim: str
    verdict: str                    # one of VERDICTS, or "unknown" for anything else
    evidence: str
    model: str = ""
    p_value: str = ""


@dataclass
class FirstScreen:
    models: list[ModelCard]
    claims: list[Claim] | None      # None: the study has no claims analysis
    claims_message: str
    figures: list[Figure]
    gaps: list[str]
    headline: str = ""              # the curves analysis's one sentence (or the largest drop)
    attacks: bool = False           # the study has attack cells
    severities: str = "severities 1–5"   # the integer levels averaged ("severities 1, 3, 5")


def headline(run: RunData) -> str:
    """The first screen's one sentence: the curves analysis's headline when it ran, else the
    largest drop from clean over the corruption cells."""
    curves = _d(run.ok("curves"))
    h = str((curves.get("summary") or {}).get("headline") or "")
    if h:
        return h[0].upper() + h[1:]
    from .comparison import model_facts
    worst = max((f for f in model_facts(run.acc) if f["largest_drop"] is not None),
                key=lambda f: f["largest_drop"], default=None)
    if worst is None:
        return ""
    return (f"Largest drop: {100 * worst['largest_drop']:.1f} points for {worst['model']} "
            f"under {worst['worst_stressor']} at severity {fmt(worst['worst_severity'])} "
            f"(from {pct(worst['clean_acc'])} to {pct(worst['worst_acc'])}).")


def _d(res) -> dict:
    """An analysis result as a plain dict (an ``AnalysisResult`` or its JSON)."""
    if res is None:
        return {}
    return res.to_dict() if hasattr(res, "to_dict") else res


def _number(v) -> float | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return v if ok else None


_STATE = {"failed": "failed", "skipped": "was left out of this study", "missing": "has not run"}


def _state(run: RunData, name: str) -> str:
    a = run.analysis(name)
    return _STATE.get(a.status if a else "", "is not available in this installation")


def headline_values(run: RunData, model: str) -> list[HeadlineValue]:
    """Every registered analysis's declared headlines for ``model``, in report order."""
    out = []
    for a in list_analyses():
        res = _d(run.ok(a.name))
        row = (res.get("per_model") or {}).get(model) or {}
        for h in a.headlines:
            v = _number(row.get(h.key))
            if v is not None:
                note = h.note
            elif not res:
                note = f"the {a.name} analysis {_state(run, a.name)}"
            elif h.key not in row:
                again = "`failmodes analyze`" if a.analyze else f"the {a.name} analysis"
                note = f"not in this {a.name} result: re-run {again} to add it"
            else:
                note = h.explain_missing(row) if h.explain_missing else "not computed"
            out.append(HeadlineValue(a.name, h, v, note))
    return out


def _rows(res: dict, name: str) -> list[dict]:
    rows = (res.get("tables") or {}).get(name)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _per_corruption(run: RunData, metrics: dict, model: str) -> list[dict]:
    """(corruption, family, mean accuracy) of ``model``: the metrics analysis's table when
    it ran, else the store's cells of integer severities 1–5 (the same definition)."""
    got = [r for r in _rows(metrics, "corruptions") if r.get("model") == model
           and r.get("dataset") in (None, run.dataset) and r.get("corruption")]
    if got:
        return [{"corruption": r["corruption"], "family": r.get("family", ""),
                 "accuracy": r.get("accuracy")} for r in got]
    from ..store import stressor_family
    by: dict[str, list[float]] = {}
    for r in run.acc:
        fam = stressor_family(r["stressor"])
        if r["model"] == model and fam not in ("clean", "sweep", "other") \
                and float(r["severity"]) in (1.0, 2.0, 3.0, 4.0, 5.0):
            by.setdefault(r["stressor"], []).append(r["accuracy"])
    return [{"corruption": s, "family": stressor_family(s), "accuracy": sum(v) / len(v)}
            for s, v in by.items()]


def _regimes(curves: dict, run: RunData) -> dict[tuple[str | None, str | None], dict]:
    return {(r.get("model"), r.get("stressor")): r for r in _rows(curves, "regimes")
            if r.get("dataset") in (None, run.dataset)}


def _detail(r: dict | None) -> str:
    if not r:
        return ""
    bits = []
    if isinstance(r.get("breakpoint"), (int, float)):
        bits.append(f"break at {r['breakpoint']:.1f}")
    if isinstance(r.get("total_drop"), (int, float)):
        bits.append(f"−{r['total_drop']:.0f} pt")
    if isinstance(r.get("label_share"), (int, float)):   # the label's share of resamples
        bits.append(f"label in {100 * r['label_share']:.0f} % of resamples")
    return " · ".join(bits)


def model_cards(run: RunData) -> list[ModelCard]:
    metrics, curves = _d(run.ok("metrics")), _d(run.ok("curves"))
    regimes = _regimes(curves, run)
    from . import adversarial
    clean = adversarial.clean_accuracy(run)
    attacks = adversarial.attack_rows(run)
    records = {r["name"]: r for r in run.models}
    cards = []
    for m in run.model_names:
        per = sorted((r for r in _per_corruption(run, metrics, m)
                      if isinstance(r["accuracy"], (int, float))), key=lambda r: r["accuracy"])
        worst = [Worst(r["corruption"], r["family"], r["accuracy"],
                       (regimes.get((m, r["corruption"])) or {}).get("regime"),
                       _detail(regimes.get((m, r["corruption"])))) for r in per[:N_WORST]]
        # A lone model is the baseline of nothing: no tag.
        tagged = m == run.baseline and len(run.model_names) > 1
        cards.append(ModelCard(m, tagged, clean.get(m), headline_values(run, m),
                               worst, adversarial.headline(attacks, m), forward_of(records[m])))
    return cards


def read_claims(run: RunData) -> tuple[list[Claim] | None, str]:
    """The claims analysis's verdicts; ``(None, why)`` when the study has none."""
    a = run.analysis(CLAIMS)
    if a is None or a.status in ("missing", "skipped", "unavailable"):
        return None, ""
    if a.status != "ok":
        return [], f"The claims analysis {a.status}: {a.message.splitlines()[0] if a.message else ''}"
    out = []
    for r in _rows(_d(a.result), CLAIMS_TABLE):
        v = str(r.get("verdict", "")).lower()
        p = r.get("p_value")
        why = r.get("reason") if r.get("reason") is not None else r.get("evidence")
        ph = r.get("p_holm")
        pv = fmt(p, 2) if isinstance(p, (int, float)) else ""
        if pv and isinstance(ph, (int, float)):
            pv += f" (Holm {fmt(ph, 2)})"
        out.append(Claim(str(r.get("claim", "")), v if v in VERDICTS else "unknown",
                         "" if why is None else str(why),
                         str(r.get("model") or r.get("models") or ""), pv))
    # The family: how many decisive verdicts chance alone would give, and Holm's count.
    family = str((_d(a.result).get("summary") or {}).get("family_wise") or "")
    return (out, family) if out else (None, "")   # a study without claims shows no block


def first_screen(run: RunData, out_dir: Path | None = None) -> FirstScreen:
    """The first screen of ``run``; its figures are written under ``out_dir/figures``
    (default: the run folder)."""
    out_dir = Path(out_dir) if out_dir is not None else run.run_dir
    cards = model_cards(run)
    claims, why = read_claims(run)
    figs, gaps = [], []
    metrics = _d(run.ok("metrics"))
    per = {c.model: _per_corruption(run, metrics, c.model) for c in cards}
    sev = severities_text(evaluated_severities(run.acc))   # the levels the run has, as they are
    if any(per.values()):
        p = corruption_overview(per, out_dir / FIG_DIR / "report_corruption_overview.png",
                                {c.model: c.clean_accuracy for c in cards}, severities=sev)
        figs.append(figure(out_dir, f"{FIG_DIR}/{p.name}",
                           f"Mean accuracy over {sev} for every corruption, per model "
                           "(dotted line: clean accuracy), grouped by family; extra "
                           "corruptions are marked †."))
        worst = list(dict.fromkeys(w.corruption for c in cards[:1] for w in c.worst))
        for c in cards[1:]:
            worst += [w.corruption for w in c.worst if w.corruption not in worst]
        regimes = {(c.model, w.corruption): w.regime for c in cards for w in c.worst}
        wp = worst_curves(run.acc, worst[:N_WORST + 1], run.model_names,
                          out_dir / FIG_DIR / "report_worst_curves.png", regimes)
        if wp:
            figs.append(figure(out_dir, f"{FIG_DIR}/{wp.name}",
                               "The worst corruptions, one per panel: accuracy vs severity for "
                               "every model, with each model's failure regime."))
    for a in list_analyses():
        if a.headlines and run.ok(a.name) is None:
            what = ", ".join(h.label for h in a.headlines)
            gaps.append(f"No {what}: the {a.name} analysis {_state(run, a.name)}.")
    return FirstScreen(cards, claims, why, figs, gaps, headline(run),
                       any(c.attack for c in cards), sev)


def card_rows(fs: FirstScreen) -> list[dict]:
    """The first screen's per-model numbers as strings, for the template."""
    out = []
    for c in fs.models:
        out.append({
            "model": c.model, "baseline": c.baseline, "forward": c.forward,
            "nums": [{"label": hv.headline.label, "value": format_headline(hv.headline, hv.value),
                      "sub": hv.note, "analysis": hv.analysis} for hv in c.headlines],
            "worst": [{"name": w.corruption, "family": w.family, "acc": pct(w.accuracy),
                       "regime": w.regime or "no regime", "detail": w.detail}
                      for w in c.worst],
            "attack": _attack_line(c.attack)})
    return out


def _attack_line(a: dict | None) -> dict | None:
    if a is None:
        return None
    from .adversarial import eps_label
    sub = f"{a['attack']} at ε = {eps_label(a['eps'], a['norm'])}"
    if a.get("success_rate") is not None:
        sub += f" · attack success {pct(a['success_rate'])}"
    return {"value": pct(a["accuracy"]), "sub": sub}
