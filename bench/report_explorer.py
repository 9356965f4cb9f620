"""Size and speed of the report's explorer on a quick-sized run: N images × every
benchmark and extra corruption at severities 1–5 (+ clean) × M models.

Builds a run folder of crafted predictions (no model is run) on DATA (default the
synthetic shapes), renders its report, then opens it in Debian's chromium (Playwright)
and times load → explorer ready and one filter change. Prints JSON.

    python bench/report_explorer.py --images 1000 --models 2 --out /tmp/bench-explorer
    python bench/report_explorer.py --data imagefolder:/data/cifar10 --images 1000
"""
import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np


def build_run(out: Path, data: str, n: int, models: int) -> Path:
    from failmodes.evaluate.inputs import load_eval_dataset
    from failmodes.store import CellKey, ResolvedEvalConfig, ResultsStore
    from failmodes.stressors import list_stressors
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cfg = {"data": data, "split": "test", "subset": n, "seed": 0, "models": {}}
    (out / "eval_config.json").write_text(json.dumps({"config": cfg}))
    ds, key = load_eval_dataset(ResolvedEvalConfig(**cfg))
    labels, idx = ds.labels.numpy(), ds.indices.numpy()
    names = [s for f in ("noise", "blur", "weather", "digital") for s in list_stressors(family=f)]
    rng = np.random.default_rng(0)
    with ResultsStore(out / "results.sqlite") as st:
        st.start_run("bench/report_explorer.py", cfg, {})
        for m in range(models):
            name = f"model-{m}"
            st.register_model(name, spec="fake", arch="fake", weights_hash=name,
                              class_names=ds.classes)
            for s, v in [("clean", 0.0)] + [(s, float(v)) for s in names for v in range(1, 6)]:
                ok = rng.random(len(labels)) < 0.9 - 0.1 * v
                wrong = (labels + rng.integers(1, len(ds.classes), len(labels))) % len(ds.classes)
                conf = rng.uniform(0.2, 1.0, len(labels))
                st.write_cell(CellKey(name, key, s, v, 0), {
                    "idx": idx, "label": labels, "pred": np.where(ok, labels, wrong),
                    "conf": conf, "p_true": np.where(ok, conf, 0.05),
                    "entropy": np.full(len(labels), 1.0), "margin": np.full(len(labels), 0.1)})
    return out


def browse(report: Path) -> dict:
    from playwright.sync_api import sync_playwright
    chromium = shutil.which("chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1280, "height": 900})
        t0 = time.perf_counter()
        page.goto(report.resolve().as_uri())
        page.wait_for_selector("#fm-explorer[data-ready='1']", state="attached", timeout=120_000)
        ready = time.perf_counter() - t0
        t0 = time.perf_counter()
        page.select_option("#fm-f-outcome", "all")
        page.wait_for_function("document.querySelectorAll('#fm-grid .fm-card').length > 0")
        filt = time.perf_counter() - t0
        rows = int(page.text_content("#fm-count"))
        b.close()
    return {"load_to_ready_s": round(ready, 2), "filter_all_rows_s": round(filt, 3),
            "rows_all": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--models", type=int, default=2)
    ap.add_argument("--out", default="/tmp/bench-report-explorer")
    ap.add_argument("--no-browser", action="store_true")
    a = ap.parse_args()
    import torch

    from failmodes._device import cpu_description
    from failmodes.report import render_report
    t0 = time.perf_counter()
    run = build_run(Path(a.out), a.data, a.images, a.models)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = render_report(run)
    rendered = time.perf_counter() - t0
    html = report.read_text()
    embed = html[html.index("This page embeds"):].split("</p>")[0]
    res = {"images": a.images, "models": a.models, "data": a.data,
           "build_store_s": round(built, 1), "render_s": round(rendered, 1),
           "report_mb": round(report.stat().st_size / 2 ** 20, 2), "embeds": embed,
           "threads": torch.get_num_threads(), "load_avg": os.getloadavg(),
           "machine": cpu_description()}
    if not a.no_browser:
        res.update(browse(report))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
