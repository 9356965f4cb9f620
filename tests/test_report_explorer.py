"""The report's first screen and failure explorer: the packed rows against the store, the
claims slot, escaping, the CSP, and the page driven in a real browser (Debian's chromium
through Playwright, no browser download).

The browser run is a small real run folder: a 40-image ImageFolder tree written here, a
store of crafted predictions on it (two models, clean + 3 corruptions × 5 severities +
a rotation sweep) and class names that contain ``<script>``. Set FAILMODES_SHOTS=DIR to
keep the screenshots; FAILMODES_DEMO_RUN=RUN also checks that run's report.html."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import shutil
from html import unescape
from pathlib import Path

import numpy as np
import pytest

from failmodes.analysis import registry
from failmodes.report import render_report
from failmodes.report._collect import collect_run
from failmodes.report.explorer import MISSING, build_explorer_data, script_json
from failmodes.store import CellKey, ResultsStore

EVIL = "<script>alert('x')</script>"
FOLDERS = ["ant", "bee", "cow", "dog"]
CLASSES = ["ant", "bee", EVIL, "dog"]
N = 40
STRESSORS = ("gaussian_noise", "fog", "contrast")
MODELS = {"net-a": 0.9, "net-b": 0.8}


def _tree(root: Path) -> None:
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(N):
        c = FOLDERS[i % 4]
        (root / "test" / c).mkdir(parents=True, exist_ok=True)
        img = np.zeros((32, 32, 3), np.uint8)
        img[:] = rng.integers(40, 200, 3)
        img[8 + i % 8:20 + i % 8, 6:26] = rng.integers(0, 255, 3)   # a block on a background
        Image.fromarray(img).save(root / "test" / c / f"{i:03d}.png")


def _run(tmp: Path) -> Path:
    """A run folder whose images the explorer can rebuild (eval_config.json + data)."""
    data, run = tmp / "data", tmp / "run"
    _tree(data)
    run.mkdir()
    cfg = {"data": f"imagefolder:{data}", "split": "test", "seed": 0, "models": {}}
    (run / "eval_config.json").write_text(json.dumps({"config": cfg}))
    from failmodes.data import load_dataset
    ds = load_dataset(f"imagefolder:{data}", split="test")
    labels, idx = ds.labels.numpy(), ds.indices.numpy()
    rng = np.random.default_rng(1)
    cells = [("clean", 0.0)] + [(s, float(v)) for s in STRESSORS for v in range(1, 6)] + \
        [("rotation", float(v)) for v in (-30, 30)]
    u = rng.random((len(cells), len(labels)))
    with ResultsStore(run / "results.sqlite") as st:
        st.start_run("failmodes evaluate --fake", cfg, {})
        for m, acc in MODELS.items():
            st.register_model(m, spec="fake", arch="fake", weights_hash=m, class_names=CLASSES)
            for j, (s, v) in enumerate(cells):
                ok = u[j] < acc - 0.12 * abs(v) / (30 if s == "rotation" else 1)
                conf = np.round(rng.uniform(0.3, 1.0, len(labels)), 4)
                st.write_cell(CellKey(m, "imagefolder:test", s, v, 0), {
                    "idx": idx, "label": labels, "pred": np.where(ok, labels, (labels + 1) % 4),
                    "conf": conf, "p_true": np.where(ok, conf, 0.05),
                    "entropy": np.full(len(labels), 0.5), "margin": np.full(len(labels), 0.2)})
    _cam_maps(run, idx)
    return run


CAM_SAMPLE = slice(0, 40, 4)   # every 4th image has CAMs


def _cam_maps(run: Path, idx: np.ndarray) -> None:
    """Saved CAMs (the cam analysis's sidecar): net-a only, clean and fog 1–5; hot in the
    top-left 8×8 corner of a 16×16 map, cold elsewhere."""
    groups = [("clean", 0.0)] + [("fog", float(v)) for v in range(1, 6)]
    maps = np.zeros((1, len(groups), len(idx[CAM_SAMPLE]), 16, 16), np.uint8)
    maps[..., :8, :8] = 250
    (run / "analysis").mkdir(exist_ok=True)
    np.savez(run / "analysis" / "cam_maps.npz", models=np.array(["net-a"]),
             stressors=np.array([g[0] for g in groups]),
             severities=np.array([g[1] for g in groups]), indices=idx[CAM_SAMPLE],
             maps=maps, present=np.ones((1, len(groups)), bool))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("explorer"))


def _dec(b64: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.dtype(dtype).newbyteorder("<"))


def test_packed_rows_equal_the_store(run):
    data = build_explorer_data(run)
    p = data.payload
    n, cells = p["n"], p["cells"]
    pred = _dec(p["pred"], np.uint16).reshape(len(cells), n)
    conf = _dec(p["conf"], np.float32).reshape(len(cells), n)
    idx, label = _dec(p["idx"], np.int32), _dec(p["label"], np.uint16)
    assert n == N and len(cells) == 2 * (1 + 15 + 2) and p["classes"] == CLASSES
    with ResultsStore(run / "results.sqlite", readonly=True) as st:
        for j, (m, s, v) in enumerate(cells):
            (c,) = [c for c in st.cells(model=p["models"][m],
                                        stressor=p["stressors"][s]["name"]) if c.severity == v]
            r = st.predictions(c)
            assert np.array_equal(idx, r["idx"]) and np.array_equal(label, r["label"])
            assert np.array_equal(pred[j], r["pred"])
            assert np.allclose(conf[j], r["conf"], atol=1e-7)
    assert (pred != MISSING).all()
    fams = {s["name"]: s["family"] for s in p["stressors"]}
    assert fams["clean"] == "clean" and fams["fog"] == "weather" and fams["rotation"] == "sweep"
    # Every stressor has a sprite sheet holding every image (40 fit the budget).
    assert p["thumbs"]["k"] == N and set(p["thumbs"]["sprites"]) == set(fams)
    assert p["thumbs"]["sprites"]["fog"]["values"] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_cams_are_read_from_the_saved_maps(run):
    cams = build_explorer_data(run).payload["cams"]
    side, groups, pos = cams["side"], cams["groups"], cams["pos"]
    assert pos == list(range(40))[CAM_SAMPLE] and groups[0] == ["clean", 0.0]
    maps = _dec(cams["maps"], np.uint8).reshape(2, len(groups), len(pos), side, side)
    assert cams["present"] == [1] * len(groups) + [0] * len(groups)   # net-b has none
    h = side // 2
    assert (maps[0, :, :, :h, :h] == 250).all() and (maps[0, :, :, h:, :] == 0).all()
    assert not maps[1].any()


def test_saved_cam_maps_round_trip(tmp_path):
    from failmodes.analysis.cam.maps import SIDE, save_cam_maps, to_u8
    from failmodes.report._cams import pack_cams
    raw = np.zeros((3, 4, 4))
    raw[:, 0, 0] = [5.0, 0.2, 1e3]            # any scale: each map is min-max scaled
    u8 = to_u8(raw)
    assert u8.shape == (3, SIDE, SIDE) and (u8.max(axis=(1, 2)) == 255).all()
    assert (u8.min(axis=(1, 2)) == 0).all() and (u8[:, 0, 0] == 255).all()
    assert not to_u8(np.ones((1, 4, 4))).any()  # a constant map carries no attention
    save_cam_maps(tmp_path / "analysis", {"m": {("clean", 0.0): u8, ("fog", 2.0): u8[::-1]}},
                  [7, 3, 11])
    cams, why = pack_cams(tmp_path, ["other", "m"], np.array([3, 5, 7, 11]))
    assert why == "" and cams["groups"] == [["clean", 0.0], ["fog", 2.0]]
    assert cams["pos"] == [2, 0, 3] and cams["present"] == [0, 0, 1, 1]
    maps = _dec(cams["maps"], np.uint8).reshape(2, 2, 3, SIDE, SIDE)
    assert not maps[0].any() and np.array_equal(maps[1, 0], u8)
    assert np.array_equal(maps[1, 1], u8[::-1])


def test_thumbnail_budget_and_rebuilt_images(run):
    from PIL import Image
    data = build_explorer_data(run, thumb_budget=60_000)
    k = data.payload["thumbs"]["k"]
    assert 8 <= k < N and any(f"embedded for {k} of the {N} images" in n for n in data.notes)
    assert sum(len(s) for s in data.sprites.values()) < 2 * 60_000
    # The same budget through render_report (what `failmodes report --thumb-budget` passes),
    # and the page says how to get more.
    html = render_report(run, run.parent / "budget" / "report.html", thumb_budget=60_000)
    text = html.read_text()
    assert f"embedded for {k} of the {N} images" in text and "0.0572 MB budget" in text
    assert "--thumb-budget MB" in text
    # The clean sprite holds the dataset's own pixels (WebP-close) at the documented place.
    from failmodes.data import load_dataset
    cfg = json.loads((run / "eval_config.json").read_text())["config"]
    ds = load_dataset(cfg["data"], split="test")
    import io
    sheet = np.asarray(Image.open(io.BytesIO(base64.b64decode(
        data.sprites["clean"].split(",", 1)[1]))).convert("RGB"), np.float64)
    cols = data.payload["thumbs"]["sprites"]["clean"]["cols"]
    t = 5                                    # slot t holds image position pos[t]
    p = data.payload["thumbs"]["pos"][t]
    tile = sheet[(t // cols) * 32:(t // cols + 1) * 32, (t % cols) * 32:(t % cols + 1) * 32]
    err = [np.abs(tile - ds.images[q].numpy()).mean() for q in range(N)]
    # Lossy WebP (4:2:0 chroma) is off by a few levels on these saturated blocks; any
    # other image is far further away.
    assert err[p] < 12 and err[p] < min(e for q, e in enumerate(err) if q != p) / 3


def test_script_json_cannot_close_its_block():
    s = script_json({"c": [EVIL, "a&b", "</SCRIPT >"]})
    assert "<" not in s and ">" not in s and "&" not in s
    assert json.loads(s) == {"c": [EVIL, "a&b", "</SCRIPT >"]}


def _write_analyses(run: Path, claims: bool) -> None:
    def fake(name, title, order):   # the real registration, with a function that never runs
        return dataclasses.replace(registry.get_analysis(name), title=title,
                                   fn=lambda *a: None, order=order)
    reg = {"metrics": fake("metrics", "Metrics", 0), "curves": fake("curves", "Curves", 1)}
    if claims:
        reg["claims"] = fake("claims", "Claims", 2)
    registry.write_result(run / "analysis", "metrics", {
        "name": "metrics", "params": {}, "summary": {}, "figures": [], "notes": [],
        "per_model": {"net-a": {"clean_accuracy": 0.9, "cifar10c_error": 12.34},
                      "net-b": {"clean_accuracy": 0.8, "cifar10c_error": None,
                                "mean_corruption_error": 30.0}},
        "tables": {"corruptions": [
            {"model": m, "corruption": c, "family": f, "accuracy": a}
            for m in MODELS for c, f, a in (("fog", "weather", 0.31), ("contrast", "digital", 0.42),
                                            ("gaussian_noise", "noise", 0.55),
                                            ("brightness", "weather", 0.88))]}})
    registry.write_result(run / "analysis", "curves", {
        "name": "curves", "params": {}, "summary": {}, "figures": [], "notes": [],
        "per_model": {}, "tables": {"regimes": [
            {"model": "net-a", "stressor": "fog", "regime": "threshold-collapse",
             "breakpoint": 3.0, "total_drop": 51.0}]}})
    if claims:
        registry.write_result(run / "analysis", "claims", {
            "name": "claims", "params": {}, "summary": {}, "figures": [], "notes": [],
            "per_model": {}, "tables": {"claims": [
                {"claim": f"fog collapses {EVIL}", "verdict": "supported",
                 "evidence": "break at 3.0", "model": "net-a", "p_value": 0.0123},
                {"claim": "net-b beats net-a", "verdict": "contradicted", "reason": "−10 pt",
                 "models": "net-a, net-b", "kind": "more_robust"},
                {"claim": "jpeg is graceful", "verdict": "inconclusive",
                 "evidence": "too few images"}]}})
    return reg


def test_first_screen_reads_the_analyses_and_the_claims_slot(run, tmp_path, monkeypatch):
    work = tmp_path / "r"
    shutil.copytree(run, work)
    reg = _write_analyses(work, claims=True)
    monkeypatch.setattr(registry, "_REGISTRY", reg)
    html = render_report(work).read_text()
    glance = html[html.index('<section id="glance">'):].split("</section>")[0]
    assert "90.0 %" in glance and "12.3 %" in glance          # read, not recomputed
    assert "30.0 % over the cells present" in glance          # net-b has no C-10-C error
    worst = re.findall(r"<li><strong>([a-z_]+)</strong>", glance)
    assert worst == ["fog", "contrast", "gaussian_noise"] * 2
    assert "threshold-collapse" in glance and "break at 3.0 · −51 pt" in glance
    assert re.findall(r'class="verdict v-(\w+)"', glance) == ["supported", "contradicted",
                                                              "inconclusive"]
    assert "0.012" in glance and "−10 pt" in glance and EVIL not in html
    assert "fog collapses &lt;script&gt;" in glance
    assert glance.count("<img") == 2                          # the two large figures
    # Without a claims analysis there is no claims block at all.
    (work / "analysis" / "claims.json").unlink()
    reg.pop("claims")
    html = render_report(work).read_text()
    assert 'id="claims"' not in html and "Worst corruptions" in html


def test_csp_allows_only_the_embedded_script(run):
    html = render_report(run).read_text()
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"',
                             html).group(1))
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1]
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    # The only other <script> is the JSON data block; no run string appears raw.
    assert re.findall(r"<script[^>]*>", html) == [
        '<script type="application/json" id="fm-explorer-data">', "<script>"]
    assert EVIL not in html and "This page embeds" in html


# ----------------------------------------------------------------------------- browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None
SKIP = ("Debian's `chromium` is not installed (apt-get install chromium)" if CHROMIUM is None
        else "playwright is not installed (pip install -e .[dev])" if sync_playwright is None
        else None)


def store_count(run: Path, model=None, family=None, stressor=None, severity=None, truth=None,
                pred=None, outcome="wrong", cmin=0.0, cmax=1.0) -> int:
    """The explorer's filter, computed in Python from the store."""
    from failmodes.store import stressor_family
    n = 0
    with ResultsStore(run / "results.sqlite", readonly=True) as st:
        classes = st.models()[0]["class_names"]
        main = collect_run(run).dataset
        for c in st.cells(dataset=main):
            if model and c.model != model or stressor and c.stressor != stressor:
                continue
            if family and stressor_family(c.stressor) != family:
                continue
            if severity is not None and c.severity != severity:
                continue
            r = st.predictions(c)
            (clean,) = [x for x in st.cells(model=c.model, dataset=main, stressor="clean")]
            ref = st.predictions(clean)
            assert np.array_equal(ref["idx"], r["idx"])
            keep = (r["conf"].astype(np.float32) >= cmin) & (r["conf"].astype(np.float32) <= cmax)
            if truth is not None:
                keep &= r["label"] == classes.index(truth)
            if pred is not None:
                keep &= r["pred"] == classes.index(pred)
            wrong = r["pred"] != r["label"]
            keep &= {"wrong": wrong, "right": ~wrong, "all": np.ones_like(wrong),
                     "flipped": wrong & (ref["pred"] == ref["label"])}[outcome]
            n += int(keep.sum())
    return n


def _open(p, report: Path, width: int = 1280):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": width, "height": 900})
    log = {"console": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: log["console"].append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: log["console"].append(f"pageerror: {e}"))
    page.on("request", lambda r: log["requests"].append(r.url))
    page.on("dialog", lambda d: (log["dialogs"].append(d.message), d.dismiss()))
    page.goto(report.resolve().as_uri())
    page.wait_for_selector("#fm-explorer[data-ready='1']", state="attached", timeout=60_000)
    return browser, page, log


def _count(page) -> int:
    return int(page.text_content("#fm-count"))


def _shots_dir(tmp_path: Path) -> Path:
    d = Path(os.environ.get("FAILMODES_SHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _check_page(run: Path, report: Path, shots: Path, tag: str, picks: dict) -> None:
    with sync_playwright() as p:
        browser, page, log = _open(p, report)
        try:
            page.screenshot(path=str(shots / f"{tag}-first-screen.png"))
            # Every embedded image decodes; the first card's thumbnails are drawn, not blank.
            imgs = page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
            assert imgs and all(imgs)
            spread = page.evaluate("""() => {
                const c = document.querySelector('#fm-grid canvas[data-drawn]');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let lo = 255, hi = 0; for (let i = 0; i < d.length; i += 4) {
                  lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); } return hi - lo; }""")
            assert spread > 20
            # It opens on the flips (right when clean, wrong when stressed), and their
            # thumbnails are the ones embedded first.
            assert _count(page) == store_count(run, outcome="flipped")
            assert page.locator("#fm-grid .fm-none").count() == 0 or \
                page.evaluate("JSON.parse(document.getElementById('fm-explorer-data')"
                              ".textContent).thumbs.k") < store_count(run, outcome="flipped")
            page.select_option("#fm-f-outcome", "wrong")
            assert _count(page) == store_count(run)
            page.locator("#explorer").scroll_into_view_if_needed()
            page.select_option("#fm-f-model", label=picks["model"])
            assert _count(page) == store_count(run, model=picks["model"])
            page.select_option("#fm-f-family", "noise")
            assert _count(page) == store_count(run, model=picks["model"], family="noise")
            page.select_option("#fm-f-family", "all")
            page.select_option("#fm-f-stressor", label=picks["stressor"])
            page.select_option("#fm-f-severity", label="3")
            f = {"model": picks["model"], "stressor": picks["stressor"], "severity": 3.0}
            assert _count(page) == store_count(run, **f)
            page.select_option("#fm-f-outcome", "flipped")
            assert _count(page) == store_count(run, **f, outcome="flipped")
            page.select_option("#fm-f-outcome", "all")
            page.select_option("#fm-f-true", label=picks["truth"])
            assert _count(page) == store_count(run, **f, outcome="all", truth=picks["truth"])
            page.select_option("#fm-f-true", "all")
            page.fill("#fm-f-cmin", "0.6")
            assert _count(page) == store_count(run, **f, outcome="all", cmin=0.6)
            if picks.get("cams"):
                # Saved CAMs overlay the stressed image: the hot top-left is redder.
                page.click("#fm-reset")
                page.select_option("#fm-f-model", label="net-a")
                page.select_option("#fm-f-stressor", label="fog")
                page.select_option("#fm-f-severity", label="3")
                page.select_option("#fm-f-outcome", "all")
                page.select_option("#fm-sort", "index")
                red = page.evaluate("""() => {
                    const c = document.querySelector('#fm-grid canvas[data-cam]');
                    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    const px = (u, v) => d.slice(4 * (v * c.width + u), 4 * (v * c.width + u) + 4);
                    const a = px(8, 8), b = px(c.width - 8, c.height - 8);
                    return [a[0] - a[2], b[0] - b[2]]; }""")
                assert red[0] > red[1] + 60
                n_cam = page.locator("#fm-grid .fm-cam").count()
                assert page.locator("#fm-grid .fm-card").count() == N
                assert n_cam == len(range(N)[CAM_SAMPLE])
                page.screenshot(path=str(shots / f"{tag}-explorer-cams.png"))
            page.click("#fm-reset")
            page.select_option("#fm-f-pred", label=picks["truth"])
            page.fill("#fm-f-cmin", "0.5")
            page.fill("#fm-f-cmax", "0.9")
            assert _count(page) == store_count(run, pred=picks["truth"], cmin=0.5, cmax=0.9,
                                               outcome="flipped")
            page.click("#fm-reset")                                  # back to the opening view
            assert _count(page) == store_count(run, outcome="flipped")
            # Sorted by confidence: the first card holds the highest confidence.
            confs = [float(x) for x in page.eval_on_selector_all(
                "#fm-grid .fm-card", "e => e.map(x => x.dataset.conf)")]
            assert len(confs) == min(48, store_count(run))
            assert confs == sorted(confs, reverse=True)
            page.select_option("#fm-sort", "flipped")
            first = page.locator("#fm-grid .fm-card").first
            if store_count(run, outcome="flipped"):
                assert first.locator(".fm-flag").count() == 1
            shown = page.locator("#fm-grid .fm-card").count()
            if not page.locator("#fm-more").is_hidden():
                page.click("#fm-more")
                assert page.locator("#fm-grid .fm-card").count() > shown
            page.select_option("#fm-f-stressor", label=picks["stressor"])
            page.locator("#explorer").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / f"{tag}-explorer-filtered.png"))
            page.emulate_media(media="print")
            assert page.locator("#fm-grid").is_hidden() and page.locator("#glance").is_visible()
            page.evaluate("document.getElementById('explorer').scrollIntoView()")
            page.screenshot(path=str(shots / f"{tag}-print.png"))
            page.set_viewport_size({"width": 390, "height": 844})
            page.emulate_media(media="screen")
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(shots / f"{tag}-phone.png"))
            page.evaluate("document.getElementById('fm-grid').scrollIntoView()")
            page.screenshot(path=str(shots / f"{tag}-phone-explorer.png"))
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= 400, f"the page scrolls sideways at phone width ({overflow} px)"
        finally:
            browser.close()
    assert log["console"] == []
    assert log["dialogs"] == []                                  # no <script> class name ran
    assert all(u.startswith(("data:", "file:")) for u in log["requests"])
    assert [u for u in log["requests"] if u.startswith("file:")] == [report.resolve().as_uri()]


@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_explorer_in_chromium(run, tmp_path):
    report = render_report(run)
    _check_page(run, report, _shots_dir(tmp_path), "synthetic",
                {"model": "net-b", "stressor": "fog", "truth": EVIL, "cams": True})


@pytest.mark.skipif(SKIP is not None or not os.environ.get("FAILMODES_DEMO_RUN"),
                    reason=SKIP or "set FAILMODES_DEMO_RUN to a demo run folder to check it")
def test_demo_report_in_chromium(tmp_path):
    run = Path(os.environ["FAILMODES_DEMO_RUN"])
    with ResultsStore(run / "results.sqlite", readonly=True) as st:
        models = [m["name"] for m in st.models()]
        truth = st.models()[0]["class_names"][2]
    _check_page(run, run / "report.html", _shots_dir(tmp_path), "demo",
                {"model": models[-1], "stressor": "fog", "truth": truth})
