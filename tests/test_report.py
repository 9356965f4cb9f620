"""The HTML report and `failmodes compare` on a fake run folder: a small store filled by
this file and hand-written analysis JSON, so the renderer is tested on its own."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from failmodes.analysis import AnalysisResult, Figure, registry
from failmodes.cli import app as cli_app  # built from the real registry, before any fake one
from failmodes.report import compare_runs, render_report
from failmodes.report.comparison import corruption_deltas, model_facts
from failmodes.store import CellKey, ResultsStore

EVIL = "<script>alert('x')</script>"
CLASSES = ["cat", "dog", EVIL]
N = 120


def _tiny_png(path: Path, color) -> None:
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 24), color).save(path)


def _fill_store(path: Path, models: dict[str, float], seed: int = 0) -> None:
    """Models with a base accuracy; accuracy falls 0.1 per severity level."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, N)
    u = rng.random((6, N))  # shared per (severity, image): paired models, like the real grid
    with ResultsStore(path) as st:
        st.start_run("failmodes evaluate --fake", {"fake": True}, {"numpy": np.__version__})
        for name, acc in models.items():
            st.register_model(name, spec="fake", arch="fake", weights_hash=name,
                              class_names=CLASSES)
            cells = [("clean", 0)] + [(s, k) for s in ("gaussian_noise", "fog") for k in range(1, 6)]
            for stressor, sev in cells:
                ok = u[sev] < acc - 0.1 * sev
                pred = np.where(ok, labels, (labels + 1) % 3)
                conf = np.full(N, 0.8)
                st.write_cell(CellKey(name, "fake:test", stressor, float(sev), 0), {
                    "idx": np.arange(N), "label": labels, "pred": pred, "conf": conf,
                    "p_true": np.where(ok, conf, 0.1), "entropy": np.full(N, 0.5),
                    "margin": np.full(N, 0.3)})


def _fake_analysis(fn_name):
    def fn(run_dir, out_dir, **kw):  # pragma: no cover - the renderer never calls it
        raise AssertionError(fn_name)
    return fn


@pytest.fixture
def fake_registry(monkeypatch):
    """Five registered analyses in report order, isolated from the real modules."""
    # The real registrations (options, intro, headlines) with a function that must not run.
    reg = {n: dataclasses.replace(registry.get_analysis(n), title=t, fn=_fake_analysis(n),
                                  order=i) for i, (n, t) in enumerate([
        ("metrics", "Robustness metrics"), ("curves", "Degradation curves and regimes"),
        ("failures", "High-confidence failures"), ("calibration", "Calibration under shift"),
        ("cam", "Grad-CAM drift")])}
    monkeypatch.setattr(registry, "_REGISTRY", reg)
    return reg


@pytest.fixture
def fake_run(tmp_path, fake_registry) -> Path:
    run = tmp_path / "runs" / "fake"
    _fill_store(run / "results.sqlite", {"net-a": 0.9, "net-b": 0.95})
    _tiny_png(run / "figures" / "heat.png", (200, 30, 30))
    # A dict, not an AnalysisResult: write_result would refuse the path leaving the run,
    # and the renderer must refuse it on its own too.
    registry.write_result(run, "metrics", AnalysisResult(
        "metrics", params={"baseline": "net-a", "n_benchmark_corruptions": 15},
        per_model={"net-a": {"mce": 1.0, "relative_mce": 1.0, "cifar10c_error": 40.0},
                   "net-b": {"mce": 0.8, "relative_mce": 0.7123, "cifar10c_error": 35.5}},
        summary={"baseline": "net-a"},
        figures=[Figure("figures/heat.png", f"heatmap of {EVIL}"),
                 Figure("figures/gone.png", "a figure that was deleted"),
                 Figure("../../outside.png", "a path leaving the run")],
        tables={"per_model": [{"model": "net-a", "mce": 1.0, "relative_mce": 1.0},
                              {"model": "net-b", "mce": 0.8, "relative_mce": 0.7123}],
                "per_class": [{"class": c, "accuracy": 0.5} for c in CLASSES]},
        notes=[f"class {EVIL} is hardest"]).to_dict())
    registry.write_result(run / "analysis", "curves", AnalysisResult(
        "curves", summary={"headline": "Largest drop: 50 points under fog at severity 5"},
        tables={"regimes": [{"model": "net-a", "stressor": "fog",
                             "regime": "threshold-collapse", "breakpoint": 3.0}]}))
    probe_dir = run / "probes" / "00-cat-rotation"
    _tiny_png(probe_dir / "strip.png", (20, 90, 200))
    registry.write_result(probe_dir, "probe_rotation", {
        "target": {"id": 3, "name": EVIL}, "figures": [{"path": "strip.png", "caption": "strip"}],
        "rows": [{"value": v, "p_target": 0.9 - v / 400, "top1": {"name": "tabby", "prob": 0.5}}
                 for v in (0.0, 90.0, 180.0)]})
    (run / "study_state.json").write_text(json.dumps({
        "commands": [{"time": "2024-01-01T00:00:00", "command": "failmodes run fake.yaml",
                      "cwd": "/x"}],
        "steps": {"analysis:calibration": {"status": "failed",
                                           "error": "ValueError: <b>bad</b> bins"},
                  "probe:00-cat-rotation": {"status": "ok", "json": str(
                      (probe_dir / "probe_rotation.json").relative_to(run)),
                      "spec": {"image": "skimage:cat", "model": "m", "stressor": "rotation"}},
                  "probe:01-dog-rotation": {"status": "failed", "error": "OSError: no dog",
                                            "spec": {"image": "dog.png", "model": "m",
                                                     "stressor": "rotation"}}}}))
    return run


def test_autoescape_and_self_contained(fake_run):
    html = render_report(fake_run).read_text()
    assert EVIL not in html                                  # class names are data
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    # The only scripts: the explorer's JSON data block and its code, allowed by hash.
    assert re.findall(r"<script[^>]*>", html) == [
        '<script type="application/json" id="fm-explorer-data">', "<script>"]
    assert "script-src 'sha256-" in html.replace("&#39;", "'")
    assert "<b>bad</b>" not in html and "&lt;b&gt;bad&lt;/b&gt;" in html
    srcs = re.findall(r'<img[^>]* src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from a network
    assert "Figure file <code>gone.png</code> is missing" in html
    assert "Figure file <code>outside.png</code> is missing" in html  # refused, not embedded


def test_missing_and_failed_sections_say_so(fake_run):
    html = render_report(fake_run).read_text()
    sec = lambda i: html[html.index(f'<section id="{i}">'):].split("</section>")[0]  # noqa: E731
    assert "The failures analysis has not run" in sec("failures")
    assert "This analysis failed" in sec("calibration") and "bins" in sec("calibration")
    assert "The cam analysis has not run" in sec("cam")
    assert "not run" in sec("failures") and "<figure" not in sec("failures")
    # The first screen is the summary: it lists what is missing instead of inventing
    # numbers, and no later table repeats it (the old summary tables are gone).
    assert "the calibration analysis failed" in sec("glance")
    assert "Largest drop: 50 points under fog" in sec("glance")
    assert "threshold-collapse" in sec("glance")
    assert html.count("Largest drop: 50 points under fog") == 1
    for gone in ("Accuracy and robustness", "Failure regimes (label", "Top confusion pairs",
                 "Not in this report", 'href="#summary"'):
        assert gone not in html
    # Sections follow the registry, with the comparison after the curves; training curves
    # with no history to show come last, before the appendix (issue 35).
    order = [m for m in re.findall(r'<section id="([^"]+)">', html)]
    assert order == ["glance", "explorer", "metrics", "curves", "comparison", "failures",
                     "calibration", "cam", "adversarial", "sweeps", "training", "appendix"]
    assert "no attack cells" in sec("adversarial")
    assert "failmodes run fake.yaml" in sec("appendix")
    # Probes: the table and strip of the one that ran, the reason of the one that failed.
    assert "m on skimage:cat under rotation" in sec("sweeps") and "tabby" in sec("sweeps")
    assert "Probe m on dog.png under rotation: failed — OSError: no dog" in sec("sweeps")
    assert sec("sweeps").count("<img") == 1
    # Per-model analysis numbers reach the first screen's cards and the pivot in their
    # section, under labels that say what they are.
    assert "35.5 %" in sec("glance") and "CIFAR-10-C error" in sec("glance")
    assert "0.712" in sec("metrics")
    assert re.search(r"Headline numbers per model.*<th[^>]*>net-a</th><th[^>]*>net-b</th>",
                     sec("metrics"), re.S)


def test_outputs_and_comparison_numbers(fake_run):
    render_report(fake_run)
    res = json.loads((fake_run / "results.json").read_text())
    assert res["analyses"]["calibration"]["status"] == "failed"
    assert res["analyses"]["failures"]["status"] == "missing"
    facts = {f["model"]: f for f in res["models"]}
    rng = np.random.default_rng(0)
    rng.integers(0, 3, N)
    assert facts["net-a"]["clean_acc"] == pytest.approx(np.mean(rng.random((6, N))[0] < 0.9))
    assert (fake_run / "tables" / "accuracy_cells.csv").read_text().count("\n") == 1 + 2 * 11
    assert (fake_run / "tables" / "metrics__per_model.csv").exists()
    # Paired deltas equal the difference of the two models' accuracies on the same images.
    store = fake_run / "results.sqlite"
    d = {r["stressor"]: r for r in corruption_deltas(store, "net-a", store, "net-b")}
    acc = {(r["model"], r["stressor"], r["severity"]): r["accuracy"] for r in res["cells"]}
    want = np.mean([acc[("net-b", "fog", s)] - acc[("net-a", "fog", s)] for s in range(1, 6)])
    assert d["fog"]["delta"] == pytest.approx(100 * want)
    assert d["fog"]["ci95"] > 0 and "clean" not in d


def _md_table(text: str, heading: str) -> list[dict]:
    """The first Markdown table under ``## heading``, as dicts keyed by its header."""
    block = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.startswith("|")]
    split = lambda ln: [c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]]  # noqa: E731
    head = split(lines[0])
    return [dict(zip(head, split(ln))) for ln in lines[2:]]


def test_summary_markdown_numbers(fake_run):
    """summary.md repeats the store's numbers: recomputed here from the fixture's draws."""
    render_report(fake_run)
    text = (fake_run / "summary.md").read_text()
    rng = np.random.default_rng(0)
    rng.integers(0, 3, N)
    u = rng.random((6, N))
    acc = lambda base, sev: np.mean(u[sev] < base - 0.1 * sev)  # noqa: E731
    models = {r["model"]: r for r in _md_table(text, "Models")}
    assert models["net-a"]["clean acc %"] == f"{100 * acc(0.9, 0):.2f}"
    assert models["net-b"]["images"] == str(N)
    assert models["net-a"]["corruption cells"] == "10"
    # The declared headlines: mCE as metrics wrote it; calibration failed: a dash, never an
    # invented number.
    assert models["net-a"]["mCE"] == "1" and models["net-b"]["ECE clean"] == "—"
    assert "Not in this summary: failures (missing), calibration (failed), cam (missing)" in text
    rows = {r["corruption"]: r for r in _md_table(text, "Per corruption")}
    assert set(rows) == {"gaussian_noise", "fog"}
    fog = rows["fog"]
    assert fog["net-a mean %"] == f"{100 * np.mean([acc(0.9, s) for s in range(1, 6)]):.1f}"
    assert fog["net-b sev 5 %"] == f"{100 * acc(0.95, 5):.1f}"
    assert fog["net-a regime"] == "threshold-collapse" and fog["net-b regime"] == "—"
    store = fake_run / "results.sqlite"
    d = {r["stressor"]: r for r in corruption_deltas(store, "net-a", store, "net-b")}
    q = d["fog"]["p_holm"]
    want_p = "< 0.0001" if q < 1e-4 else f"{q:.2g}"          # never a bare 0
    assert fog["Δ net-b − net-a (p Holm)"] == f"{d['fog']['delta']:+.1f} ({want_p})"


def test_summary_markdown_cells_are_inert():
    from failmodes.report.summary_md import _cell
    assert _cell("a|b\nc") == r"a\|b c"
    assert _cell(EVIL) == "&lt;script>alert('x')&lt;/script>"
    assert _cell("p < 0.05 <b>") == "p < 0.05 &lt;b>"
    assert _cell(None) == "—"


def test_model_facts_largest_drop():
    rows = [{"model": "m", "dataset": "d", "stressor": "clean", "severity": 0.0, "n": 10,
             "accuracy": 0.9},
            {"model": "m", "dataset": "d", "stressor": "fog", "severity": 5.0, "n": 10,
             "accuracy": 0.3},
            {"model": "m", "dataset": "d", "stressor": "fog", "severity": 1.0, "n": 10,
             "accuracy": 0.8}]
    (f,) = model_facts(rows)
    assert f["largest_drop"] == pytest.approx(0.6) and f["worst_stressor"] == "fog"
    assert f["worst_severity"] == 5.0 and f["mean_corruption_acc"] == pytest.approx(0.55)


def test_report_on_an_empty_run_folder(tmp_path, fake_registry):
    html = render_report(tmp_path, force=True).read_text()
    assert "No evaluated cells in this run folder yet" in html
    assert "has not run" in html


def test_compare_runs(tmp_path, fake_registry):
    a, b = tmp_path / "a", tmp_path / "b"
    _fill_store(a / "results.sqlite", {"net-a": 0.9})
    _fill_store(b / "results.sqlite", {"net-b": 0.95, EVIL: 0.5})
    out = compare_runs(a, b, tmp_path / "cmp")
    html = out.read_text()
    assert out.name == "compare.html" and EVIL not in html
    assert "B:net-b" in html and "<img" in html
    rows = (tmp_path / "cmp" / "tables" / "compare_deltas.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2  # header + 2 models × 2 corruptions
    with pytest.raises(ValueError, match="holds no results.sqlite"):
        compare_runs(a, tmp_path / "nothing")


def _snapshot(root: Path) -> list:
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in [root, *root.rglob("*")])


def test_out_writes_nothing_into_a_read_only_run_folder(fake_run, tmp_path):
    import os
    import shutil
    import stat
    ro = tmp_path / "ro"
    shutil.copytree(fake_run, ro)
    paths = [ro, *ro.rglob("*")]
    for p in paths:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(ro)
    try:
        out = render_report(ro, tmp_path / "elsewhere" / "report.html")
        # As root the mode bits do not stop a write: the snapshot is what proves it.
        assert _snapshot(ro) == before, "render_report wrote into the run folder"
    finally:
        for p in paths:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    here = out.parent
    assert out.is_file() and (here / "results.json").is_file()
    assert (here / "tables" / "accuracy_cells.csv").is_file()
    assert (here / "figures" / "report_comparison.png").is_file()
    html = out.read_text()
    assert "Figure file" not in html.split('<section id="metrics">')[0]   # report figures found
    assert os.path.getsize(out) > 0 and not (ro / "report.html").exists()


def test_report_cli_out_and_thumb_budget(fake_run, tmp_path):
    from typer.testing import CliRunner

    app = cli_app
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(fake_run), "--out", str(tmp_path / "r"),
                              "--thumb-budget", "1.5"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "report.html").is_file() and str(tmp_path / "r") in res.output
    for bad in ("0", "-1", "257", "nan", "inf"):
        res = runner.invoke(app, ["report", str(fake_run), "--thumb-budget", bad])
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code == 2 and len(lines) == 1, res.output
        assert lines[0].startswith("error: --thumb-budget") and "at most 256 MB" in lines[0]
    # `run` checks it before any work: no run folder appears.
    res = runner.invoke(app, ["run", "--preset", "demo", "--out", str(tmp_path / "never"),
                              "--thumb-budget", "0"])
    assert res.exit_code == 2 and "error: --thumb-budget 0 MB" in res.output
    assert not (tmp_path / "never").exists()


def test_headline_values_format_by_their_unit_in_every_place():
    # summary.md once printed a percent headline with one significant digit (60.3 -> "6e+01");
    # the first screen and summary.md now share one formatter.
    from failmodes.analysis.registry import Headline
    from failmodes.report._format import format_headline
    assert format_headline(Headline("e", "CIFAR-10-C error", "percent", False), 60.3) == "60.3 %"
    assert format_headline(Headline("a", "clean accuracy", "fraction", True), 0.62) == "62.0 %"
    assert format_headline(Headline("m", "mCE", "ratio", False), 1.0234) == "1.02"
    assert format_headline(Headline("m", "mCE", "ratio", False), None) == "—"


def test_a_large_figure_embeds_as_webp_and_a_small_one_as_png(tmp_path):
    # The quick study's page was 16.4 MB, 12.4 MB of it figures (Grad-CAM montages, probe
    # strips); a big PNG is embedded as WebP when that at least halves it.
    import base64
    import io

    import numpy as np
    from PIL import Image

    from failmodes.report._format import EMBED_AS_WEBP_OVER, data_uri
    rng = np.random.default_rng(0)
    # photo-like: smooth gradients plus mild noise, as a CAM overlay montage
    yy, xx = np.mgrid[0:600, 0:800]
    img = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(float)
    img += rng.normal(0, 12, img.shape)
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "small.png")
    big = (tmp_path / "big.png").stat().st_size
    assert big > EMBED_AS_WEBP_OVER
    uri = data_uri(tmp_path / "big.png")
    assert uri.startswith("data:image/webp;base64,")
    raw = base64.b64decode(uri.split(",", 1)[1])
    assert 2 * len(raw) <= big
    with Image.open(io.BytesIO(raw)) as im:
        assert im.size == (800, 600)
        back = np.asarray(im.convert("RGB"), float)
    assert np.abs(back - img.clip(0, 255)).mean() < 12     # quality 90: close to the original
    assert data_uri(tmp_path / "small.png").startswith("data:image/png;base64,")
