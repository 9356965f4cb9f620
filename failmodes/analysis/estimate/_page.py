"""The small self-contained HTML page of ``failmodes estimate``: the estimates, the shift
tests, the nearest stored cells and the least confident images (inline PNG thumbnails)."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import torch

from ..._atomic import write_text_atomic
from ...estimate import DEFAULT_HEADLINE

STYLE = ("body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}"
         "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.2em .7em;"
         "border-bottom:1px solid #ddd;text-align:right}th{background:#f4f4f4}"
         "td:first-child,th:first-child{text-align:left}.lead{font-size:1.2em}"
         "figure{display:inline-block;margin:.3em;text-align:center;font-size:11px}"
         "img{width:96px;height:96px;image-rendering:pixelated;border:1px solid #ccc}")


def _png(image: torch.Tensor) -> str:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image.cpu().numpy()).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _pct(v) -> str:
    return "" if v is None else f"{100 * v:.1f}"


def _model_html(name: str, r, images: torch.Tensor, names: list[str], classes: list[str] | None,
                thumbnails: int) -> str:
    e = html.escape
    out = [f"<h2>{e(name)}</h2><p class=lead>{e(r.sentence())}</p>"]
    if r.true_accuracy is not None:
        out.append(f"<p>Check (the images' own labels): true accuracy "
                   f"<b>{_pct(r.true_accuracy)} %</b>.</p>")
    out.append("<table><tr><th>estimator</th><th>accuracy %</th><th>interval %</th></tr>")
    for est in r.estimates:
        bold = est.name == r.headline
        cell = f"<b>{_pct(est.accuracy)}</b>" if bold else _pct(est.accuracy)
        out.append(f"<tr><td>{e(est.name)}</td><td>{cell}</td>"
                   f"<td>{_pct(est.low)}–{_pct(est.high)}</td></tr>")
    out.append("</table>")
    ks = r.ks
    tests = [f"KS on the softmax outputs (Bonferroni over {len(ks.p_values)} classes): "
             f"p = {ks.p_value:.3g} → {'SHIFTED' if ks.shifted else 'no shift detected'}"]
    if r.mmd is not None:
        tests.append(f"MMD on penultimate features ({r.mmd.permutations} permutations): "
                     f"p = {r.mmd.p_value:.3g} → {'SHIFTED' if r.mmd.shifted else 'no shift detected'}")
    out.append("<ul>" + "".join(f"<li>{e(t)}</li>" for t in tests) + "</ul>")
    if r.nearest:
        out.append("<table><tr><th>nearest stored cell</th><th>distance</th>"
                   "<th>stored accuracy %</th><th>confidence %</th><th>regime</th></tr>")
        for c in r.nearest:
            what = "clean" if c.stressor == "clean" else f"{c.stressor} {c.severity:g}"
            out.append(f"<tr><td>{e(what)}</td><td>{c.distance:.4f}</td>"
                       f"<td>{_pct(c.accuracy)}</td><td>{_pct(c.confidence)}</td>"
                       f"<td>{e(c.regime or '')}</td></tr>")
        out.append("</table>")
    order = torch.argsort(r.confidence)[:thumbnails]
    out.append(f"<h3>The {len(order)} least confident images</h3><div>")
    for i in order.tolist():
        pred = int(r.predictions[i])
        label = classes[pred] if classes and pred < len(classes) else str(pred)
        out.append(f"<figure><img alt='{e(names[i])}' src='data:image/png;base64,"
                   f"{_png(images[i])}'><figcaption>predicted {e(label)}, "
                   f"{_pct(float(r.confidence[i]))} %<br>{e(names[i][-24:])}</figcaption></figure>")
    out.append("</div>")
    if r.notes:
        out.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in r.notes) + "</ul>")
    return "".join(out)


def write_page(path: Path, what: str, images: torch.Tensor, names: list[str], results: dict,
               thumbnails: int, classes: dict[str, list[str]] | None = None) -> Path:
    body = "".join(_model_html(m, r, images, names, (classes or {}).get(m), thumbnails)
                   for m, r in results.items())
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>failmodes estimate</title>"
           f"<style>{STYLE}</style></head><body><h1>Could these images be trusted?</h1>"
           f"<p>{html.escape(what)}. Estimates are the share of correct predictions (%), "
           f"with percentile bootstrap intervals over these images (sampling only, not an "
           f"estimator's bias); no label was used. In bold: the estimator closest to the "
           f"truth on the run's stored cells (the <i>estimate</i> analysis), else "
           f"{DEFAULT_HEADLINE}.</p>"
           f"{body}</body></html>")
    return write_text_atomic(path, doc)
