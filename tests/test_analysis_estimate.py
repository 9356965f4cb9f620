"""The "Could you have known without labels?" analysis on a constructed store.

Known answers, decided before running: every cell's outputs come from a predictor that is
calibrated by construction (confidence c drawn per cell, right with probability c), so AC,
DoC and COT estimate every cell's accuracy to within sampling error (MAE < 2 points over
2000-image halves); the KS test on 500-image batches flags few clean batches (the null) and
every batch of a strongly shifted cell; the estimators are fitted on the validation cell
when the model's record says it held that split out, else on half of the clean cell.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from failmodes.analysis import get_analysis
from failmodes.analysis.estimate import estimate_run
from failmodes.config import ConfigError
from failmodes.constants import SPLIT_SEED, VAL_FRACTION
from failmodes.estimate import estimator_names
from failmodes.store import CellKey, ResultsStore, RunFolder, per_image_rows

C = 10
N = 4000
# (stressor, severity) -> confidence range of the calibrated predictor on that cell
CELLS = {("clean", 0.0): (0.3, 1.0), ("fog", 1.0): (0.3, 0.95), ("fog", 3.0): (0.2, 0.7),
         ("gaussian_noise", 5.0): (0.1, 0.5)}


def _calibrated(lo: float, hi: float, rng: np.random.Generator, n: int = N):
    c = rng.uniform(lo, hi, n)
    pred = rng.integers(0, C, n)
    p = np.repeat(((1 - c) / (C - 1))[:, None], C, axis=1)
    p[np.arange(n), pred] = c
    right = rng.random(n) < c
    labels = np.where(right, pred, (pred + rng.integers(1, C, n)) % C)
    return torch.from_numpy(np.log(p)).float(), torch.from_numpy(labels)


def _store(tmp_path, meta=None, with_val=False):
    rng = np.random.default_rng(0)
    store = ResultsStore(RunFolder(tmp_path).store)
    store.register_model("m", spec="x", arch="x", weights_hash="h",
                         class_names=[str(i) for i in range(C)], meta=meta)
    for (name, sev), (lo, hi) in CELLS.items():
        logits, labels = _calibrated(lo, hi, rng)
        store.write_cell(CellKey("m", "synthetic:test", name, sev),
                         per_image_rows(logits, labels, torch.arange(N)))
    if with_val:
        logits, labels = _calibrated(0.3, 1.0, rng)
        store.write_cell(CellKey("m", "synthetic:train-val", "clean", 0.0),
                         per_image_rows(logits, labels, torch.arange(N)))
    store.close()


def test_calibrated_cells_are_estimated_within_sampling_error(tmp_path):
    _store(tmp_path)
    res = estimate_run(tmp_path, tmp_path / "analysis", n_boot=200, shift_resamples=20)
    pm = res.per_model["m"]
    assert pm["cells"] == 3 and pm["population"] == "corruption cells"
    assert pm["best_mae"] < 0.02
    est = {r["estimator"]: r for r in res.tables["estimators"]}
    assert sorted(est) == sorted(estimator_names())
    for name in ("AC", "DoC", "COT"):
        assert est[name]["mae"] < 0.02, name
    # KS on 500-image batches: the clean half is the null, noise 5 a glaring shift.
    assert pm["false_alarm_rate"] <= 0.15
    cells = {(r["stressor"], r["severity"]): r for r in res.tables["cells"]}
    assert cells[("gaussian_noise", 5.0)]["ks_detection"] == 1.0
    assert cells[("clean", 0.0)]["n"] == N // 2        # checked on the other half only
    assert any("random half" in n for n in res.notes)
    saved = json.loads((tmp_path / "analysis" / "estimate.json").read_text())
    assert saved["per_model"]["m"]["best_estimator"] == pm["best_estimator"]
    assert (tmp_path / "analysis" / res.figures[0].path).is_file()
    assert {r["severity"] for r in res.tables["severities"]} == {1.0, 3.0, 5.0}
    assert {r["family"] for r in res.tables["families"]} == {"weather", "noise"}


def test_a_cell_without_stored_logits_is_left_out_with_a_note(tmp_path):
    _store(tmp_path)
    logits, labels = _calibrated(0.2, 0.6, np.random.default_rng(1))
    rows = per_image_rows(logits, labels, torch.arange(N))
    rows.pop("logits", None)
    with ResultsStore(RunFolder(tmp_path).store) as store:
        store.write_cell(CellKey("m", "synthetic:test", "contrast", 2.0), rows)
    res = estimate_run(tmp_path, tmp_path / "analysis", n_boot=50, shift_resamples=2)
    assert res.per_model["m"]["cells"] == 3
    assert any("1 cell(s) have no stored logits" in n for n in res.notes)


def test_the_validation_cell_is_the_source_when_the_checkpoint_held_it_out(tmp_path):
    meta = {"train_data": {"val_split": "train-val", "val_fraction": VAL_FRACTION,
                           "split_seed": SPLIT_SEED}}
    _store(tmp_path, meta=meta, with_val=True)
    res = estimate_run(tmp_path, tmp_path / "analysis", n_boot=100, shift_resamples=5)
    cells = {(r["stressor"], r["severity"]): r for r in res.tables["cells"]}
    assert cells[("clean", 0.0)]["n"] == N                 # every image, no half kept back
    assert not any(r["dataset"].endswith("train-val") for r in res.tables["cells"])
    assert res.per_model["m"]["source_accuracy"] > 0.5


def test_registered_with_typed_options_and_headlines():
    a = get_analysis("estimate")
    assert a.analyze and [h.key for h in a.headlines] == ["best_mae", "detection_rate"]
    opts = a.parse_options({"n_boot": 50})
    assert opts.n_boot == 50
    with pytest.raises(ConfigError, match="n_boot"):
        a.parse_options({"n_boot": "high"})


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from failmodes.evaluate import EvalConfig, run_evaluation
    out = tmp_path_factory.mktemp("est") / "run"
    cfg = EvalConfig(models={"cnn": {"arch": "small_cnn", "arch_args": {"width": 8}}}, data="synthetic",
                     subset=120, stressors=["fog"], severities=[1, 5], batch_size=64,
                     device="cpu", out=str(out))
    run_evaluation(cfg, progress="off")
    return out


def test_failmodes_estimate_on_a_folder_of_unlabelled_images(small_run, tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from failmodes.cli import app
    from failmodes.data import load_dataset
    from failmodes.stressors import get_stressor
    ds = load_dataset("synthetic", "test")
    x = get_stressor("fog")(ds.images[:60].permute(0, 3, 1, 2).float() / 255, 5.0, seed=0)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate((x * 255).round().byte().permute(0, 2, 3, 1)):
        Image.fromarray(img.numpy()).save(folder / f"{i:03d}.png")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["estimate", str(small_run), "--images", str(folder),
                                   "--out", str(out), "--n-boot", "50", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "60 images from" in res.output and "ATC-MC-TS" in res.output
    assert "looks like fog at" in res.output or "looks like clean" in res.output
    doc = json.loads((out / "estimate.json").read_text())
    m = doc["models"]["cnn"]
    assert doc["n_images"] == 60 and m["true_accuracy"] is None
    assert [e["name"] for e in m["estimates"]] == estimator_names()
    assert m["shift"]["mmd"] is not None and len(m["nearest"]) == 3   # clean, fog 1, fog 5
    page = (out / "estimate.html").read_text()
    assert page.count("data:image/png;base64,") == 24
    assert "SHIFTED" in page or "no shift detected" in page


def test_failmodes_estimate_reports_the_labels_of_a_data_spec_as_the_check(small_run, tmp_path):
    from failmodes.analysis.estimate.images import estimate_images
    from failmodes.store import RunFolder
    with ResultsStore(RunFolder(small_run).store, readonly=True) as st:
        dataset = st.cells(model="cnn")[0].dataset
    # The curves analysis's regimes, when the run holds them, go with the nearest cells.
    curves = RunFolder(small_run).analysis / "curves.json"
    curves.parent.mkdir(parents=True, exist_ok=True)
    curves.write_text(json.dumps({"tables": {"regimes": [
        {"model": "cnn", "dataset": dataset, "stressor": "fog", "regime": "linear"}]}}))
    r = estimate_images(small_run, "synthetic", limit=80, n_boot=50, out_dir=tmp_path,
                        device="cpu").results["cnn"]
    assert r.true_accuracy is not None and r.n_images == 80
    assert r.nearest[0].stressor == "clean"          # clean test images look like clean
    assert {c.stressor: c.regime for c in r.nearest} == {"clean": None, "fog": "linear"}


def test_failmodes_estimate_bad_input_is_one_line(small_run, tmp_path):
    from typer.testing import CliRunner

    from failmodes.cli import app
    res = CliRunner().invoke(app, ["estimate", str(small_run), "--images", "synthetic",
                                   "--model", "nope", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "model 'nope' is not in" in res.output
