"""Metrics from a store: accuracy tables, CE / mCE / relative mCE by hand, official CIFAR-10-C."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from failmodes.analysis import get_analysis
from failmodes.analysis.metrics import (
    compute_metrics,
    corruption_error,
    relative_corruption_error,
    stressor_info,
)
from failmodes.evaluate import EvalConfig, run_evaluation
from failmodes.store import CellKey, ResultsStore

N = 20
LABELS = np.arange(N) % 2

# Top-1 errors of the hand-made store: {model: {(stressor, severity): error}}.
ERRORS = {
    "base": {("clean", 0): 0.10, ("gaussian_noise", 1): 0.30, ("gaussian_noise", 2): 0.50,
             ("shot_noise", 1): 0.20, ("shot_noise", 2): 0.40, ("speckle_noise", 1): 0.60},
    "m": {("clean", 0): 0.05, ("gaussian_noise", 1): 0.20, ("gaussian_noise", 2): 0.30,
          ("shot_noise", 1): 0.20, ("shot_noise", 2): 0.20, ("speckle_noise", 1): 0.50},
}


def _rows(error: float) -> dict:
    wrong = int(round(error * N))
    pred = LABELS.copy()
    pred[:wrong] = 1 - pred[:wrong]  # the first `wrong` images are misclassified
    conf = np.full(N, 0.9)
    return {"idx": np.arange(N), "label": LABELS, "pred": pred, "conf": conf,
            "p_true": np.where(pred == LABELS, 0.9, 0.1), "entropy": np.full(N, 0.3),
            "margin": np.full(N, 0.8)}


@pytest.fixture
def hand_store(tmp_path):
    run = tmp_path / "run"
    with ResultsStore(run / "results.sqlite") as st:
        for model, errs in ERRORS.items():
            st.register_model(model, spec=model, arch="toy", weights_hash=model,
                              class_names=["a", "b"])
            for (stressor, sev), e in errs.items():
                st.write_cell(CellKey(model, "toy:test", stressor, sev), _rows(e))
            # The temperature-scaling split is stored but never counted as a test cell.
            st.write_cell(CellKey(model, "toy:train-val", "clean", 0), _rows(0.5))
    return run


def test_ce_functions_match_their_definitions():
    assert corruption_error([0.2, 0.3], [0.3, 0.5]) == pytest.approx(0.5 / 0.8)
    assert math.isnan(corruption_error([0.1], [0.0]))
    assert relative_corruption_error([0.2, 0.3], 0.05, [0.3, 0.5], 0.1) == pytest.approx(0.4 / 0.6)


def test_mce_and_relative_mce_on_a_hand_made_store(hand_store, tmp_path):
    with ResultsStore(hand_store / "results.sqlite", readonly=True) as st:
        t = compute_metrics(st)
    assert t["baseline"] == "base"
    models = {r["model"]: r for r in t["models"]}
    assert set(models) == {"base", "m"}  # train-val is not a second dataset
    m = models["m"]
    # By hand: CE_gauss = (.2+.3)/(.3+.5), CE_shot = (.2+.2)/(.2+.4); speckle is an extra.
    assert m["mce"] == pytest.approx(np.mean([0.5 / 0.8, 0.4 / 0.6]))
    # Relative: gauss ((.2-.05)+(.3-.05))/((.3-.1)+(.5-.1)), shot (.15+.15)/(.1+.3).
    assert m["relative_mce"] == pytest.approx(np.mean([0.4 / 0.6, 0.3 / 0.4]))
    assert m["mca"] == pytest.approx(np.mean([1 - 0.25, 1 - 0.20]))
    assert m["clean_accuracy"] == pytest.approx(0.95)
    assert m["corruptions"] == 2 and m["corruption_set"] == "benchmark"
    assert models["base"]["mce"] == pytest.approx(1.0)
    assert models["base"]["relative_mce"] == pytest.approx(1.0)
    corr = {(r["model"], r["corruption"]): r for r in t["corruptions"]}
    assert corr[("m", "speckle_noise")]["ce"] == pytest.approx(0.5 / 0.6)
    assert not corr[("m", "speckle_noise")]["benchmark"]
    assert corr[("m", "gaussian_noise")]["accuracy"] == pytest.approx(0.75)
    fam = stressor_info("gaussian_noise")["family"]
    fam_row = next(r for r in t["families"] if r["model"] == "m" and r["family"] == fam)
    members = [r["accuracy"] for r in t["corruptions"] if r["model"] == "m" and r["family"] == fam]
    assert fam_row["accuracy"] == pytest.approx(np.mean(members))
    cells = {(r["model"], r["stressor"], r["severity"]): r for r in t["cells"]}
    assert len(cells) == 12 and cells[("m", "shot_noise", 2.0)]["error"] == pytest.approx(0.2)
    # Per class: in m's gaussian 2 cell the 6 wrong images are indices 0..5 (3 per class).
    pc = {r["class"]: r["accuracy"] for r in t["per_class"]
          if r["model"] == "m" and r["stressor"] == "gaussian_noise" and r["severity"] == 2
          and r["dataset"] == "toy:test"}
    assert pc == pytest.approx({"a": 0.7, "b": 0.7})

    with ResultsStore(hand_store / "results.sqlite", readonly=True) as st:
        flipped = {r["model"]: r for r in compute_metrics(st, baseline="m")["models"]}
        with pytest.raises(ValueError, match="baseline model 'x'"):
            compute_metrics(st, baseline="x")
    assert flipped["m"]["mce"] == pytest.approx(1.0)
    assert flipped["base"]["mce"] == pytest.approx(np.mean([0.8 / 0.5, 0.6 / 0.4]))


def test_metrics_analysis_writes_json_csv_and_heatmaps(hand_store, tmp_path):
    out = tmp_path / "report"
    result = get_analysis("metrics").fn(hand_store, out, baseline="base")
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["per_model"]["m"]["mce"] == pytest.approx(np.mean([0.5 / 0.8, 0.4 / 0.6]))
    assert saved["summary"]["baseline"] == "base" and saved["params"]["baseline"] == "base"
    with open(out / "metrics_corruptions.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["corruption"] for r in rows} == {"gaussian_noise", "shot_noise", "speckle_noise"}
    with open(out / "metrics_cells.csv") as f:
        assert len(list(csv.DictReader(f))) == 12
    assert len(result.figures) == 2
    for fig in result.figures:
        assert (out / fig.path).read_bytes()[:4] == b"\x89PNG"
    assert any("hardest corruption is" in n for n in result.notes)


def _fake_cifar10c(tmp_path):
    """A CIFAR-class image folder of 40 images, and an 'official' .npy folder made by our own
    gaussian_noise on those images (so on-the-fly and official must agree exactly)."""
    from PIL import Image

    from failmodes.data import CIFAR10_CLASSES, load_dataset
    from failmodes.data.synthetic import make_synthetic
    from failmodes.stressors import get_stressor
    images, labels = make_synthetic(40, seed=5)
    for i, (im, lab) in enumerate(zip(images.numpy(), labels.tolist())):
        d = tmp_path / "tree" / "test" / CIFAR10_CLASSES[lab]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(d / f"{i:03d}.png")
    ds = load_dataset(str(tmp_path / "tree"), "test")
    x = ds.float_batch(0, len(ds))
    levels = [get_stressor("gaussian_noise")(x, s, seed=0, indices=ds.indices) for s in range(1, 6)]
    stack = torch.cat(levels).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    (tmp_path / "c10c").mkdir()
    np.save(tmp_path / "c10c" / "gaussian_noise.npy", stack)
    np.save(tmp_path / "c10c" / "labels.npy", np.tile(ds.labels.numpy(), 5))
    return tmp_path / "tree", tmp_path / "c10c"


def test_official_cifar10c_cells_and_comparison_table(tmp_path):
    tree, c10c = _fake_cifar10c(tmp_path)
    cfg = EvalConfig(models={"cnn": {"arch": "small_cnn", "arch_args": {"width": 8}}}, data=str(tree),
                     stressors=["gaussian_noise"], severities=[1, 2], cifar10c=str(c10c),
                     batch_size=16, out=str(tmp_path / "run"))
    s = run_evaluation(cfg, progress="off")
    assert s.computed == 5 and not s.failed
    with ResultsStore(tmp_path / "run" / "results.sqlite", readonly=True) as st:
        off = st.cells(dataset="cifar10c-official:test")
        fly = st.cells(dataset="cifar10:test", stressor="gaussian_noise")
        assert [(c.stressor, c.severity) for c in off] == [("gaussian_noise", 1.0),
                                                           ("gaussian_noise", 2.0)]
        for a, b in zip(off, fly):
            pa, pb = st.predictions(a), st.predictions(b)
            np.testing.assert_array_equal(pa["pred"], pb["pred"])
            np.testing.assert_allclose(pa["conf"], pb["conf"], atol=1e-6)
    result = get_analysis("metrics").fn(tmp_path / "run", tmp_path / "out", figures=False)
    table = result.tables["official"]
    assert [(r["corruption"], r["severity"]) for r in table] == [("gaussian_noise", 1.0),
                                                                 ("gaussian_noise", 2.0)]
    assert all(r["difference"] == 0 and r["n_official"] == 40 for r in table)
    assert (tmp_path / "out" / "metrics_official.csv").is_file()

    bad = EvalConfig(**{**cfg.__dict__, "cifar10c": str(tree), "out": str(tmp_path / "bad")})
    with pytest.raises(ValueError, match="labels.npy not found"):
        run_evaluation(bad, progress="off")
    assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------- known answers
def _bench_store(path, n_corr=15, **kw):
    """Benchmark corruption i at accuracy 0.5 + 0.02 i at every severity 1–5 (mean 0.64
    over 15), plus cells that must never enter: gaussian_noise at 2.5 and 6 (accuracy 0)
    and the extra speckle_noise at 1–5 (accuracy 0)."""
    from synthetic_store import write_store

    from failmodes.stressors.registry import CIFAR10C_ORDER
    curves = {c: {float(s): 0.5 + 0.02 * i for s in range(1, 6)}
              for i, c in enumerate(CIFAR10C_ORDER[:n_corr])}
    curves.setdefault("gaussian_noise", {}).update({2.5: 0.0, 6.0: 0.0})
    curves["speckle_noise"] = {float(s): 0.0 for s in range(1, 6)}
    write_store(path, curves, n=400, clean_acc=0.9, **kw).close()


def test_cifar10c_error_is_100_minus_mean_benchmark_accuracy(tmp_path):
    _bench_store(tmp_path / "results.sqlite")
    res = get_analysis("metrics").fn(tmp_path, tmp_path / "out", figures=False)
    m = res.per_model["m"]
    assert m["cifar10c_error"] == pytest.approx(36.0)        # 100 − 64, fractional/extra out
    assert m["mean_corruption_error"] == pytest.approx(36.0)
    assert m["mca"] == pytest.approx(0.64) and m["corruptions"] == 15
    assert m["mce"] == pytest.approx(1.0) and m["baseline"] == "m"   # a ratio vs itself
    assert res.params["severities"] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_no_cifar10c_error_without_all_15_corruptions(tmp_path):
    _bench_store(tmp_path / "results.sqlite", n_corr=14)
    res = get_analysis("metrics").fn(tmp_path, tmp_path / "out", figures=False)
    m = res.per_model["m"]
    assert m["cifar10c_error"] != m["cifar10c_error"]          # NaN: not the benchmark number
    assert m["mean_corruption_error"] == pytest.approx(100 - 100 * (0.5 + 0.02 * 6.5))
    assert any("no CIFAR-10-C error" in n and "14" in n for n in res.notes)


def test_official_cells_get_relative_mce_from_the_main_clean_cell(tmp_path):
    from synthetic_store import write_store
    db = tmp_path / "results.sqlite"
    # Main data: clean 0.9 (base) / 0.95 (m). Official cells of the same 200 images: fog
    # at 0.7, 0.5 (base) and 0.8, 0.6 (m), and no clean cell of their own.
    for model, clean, off in (("base", 0.9, (0.7, 0.5)), ("m", 0.95, (0.8, 0.6))):
        write_store(db, {"fog": {1.0: 0.8}}, n=200, model=model, dataset="cifar10:test@200",
                    clean_acc=clean).close()
        write_store(db, {"fog": {1.0: off[0], 2.0: off[1]}}, n=200, model=model,
                    dataset="cifar10c-official:test@200", clean_acc=0.0).close()
    with ResultsStore(db) as st:
        st.db.execute("DELETE FROM cells WHERE dataset LIKE 'cifar10c-official%' "
                      "AND stressor='clean'")
        st.db.commit()
        t = compute_metrics(st, baseline="base")
    off = {r["model"]: r for r in t["models"] if r["dataset"].startswith("cifar10c-official")}
    # m: ((.2 − .05) + (.4 − .05)) / ((.3 − .1) + (.5 − .1)) = 0.5 / 0.6
    assert off["m"]["relative_mce"] == pytest.approx(0.5 / 0.6)
    assert off["m"]["clean_accuracy"] == pytest.approx(0.95)
    assert off["m"]["mce"] == pytest.approx(0.6 / 0.8)


def test_imagenet_runs_say_there_is_no_alexnet_normalisation(tmp_path):
    import json as _json

    from synthetic_store import write_store
    classes = [f"c{i}" for i in range(1000)]
    write_store(tmp_path / "results.sqlite", {"fog": {1.0: 0.4, 2.0: 0.2}}, n=1000,
                classes=classes, clean_acc=0.7).close()
    res = get_analysis("metrics").fn(tmp_path, tmp_path / "out", figures=False)
    assert any("no AlexNet normalisation" in n for n in res.notes)
    # Supplied AlexNet errors make mCE the ImageNet-C number: Σ E / Σ E_AlexNet.
    ref = tmp_path / "alexnet.json"
    ref.write_text(_json.dumps({"name": "AlexNet", "clean": 0.4348,
                                "corruptions": {"fog": [0.8, 0.8, 0.8, 0.8, 0.8]}}))
    res = get_analysis("metrics").fn(tmp_path, tmp_path / "o2", figures=False,
                                     reference_errors=str(ref))
    assert res.per_model["m"]["mce"] == pytest.approx((0.6 + 0.8) / 1.6)
    assert res.per_model["m"]["baseline"] == "AlexNet"
    assert not any("no AlexNet normalisation" in n for n in res.notes)


def test_heatmap_title_of_a_long_model_name_stays_inside_the_figure(tmp_path, monkeypatch):
    # A long model name once ran past the figure's right edge and was clipped in the PNG.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from failmodes.analysis.metrics import _figures
    kept = {}
    monkeypatch.setattr(plt, "close", lambda fig: kept.setdefault("fig", fig))
    name = "resnet18-augmix-width64-seed1234-longer-than-any-figure-is-wide"
    cells = [{"model": name, "dataset": "d", "kind": "corruption", "stressor": s,
              "severity": v, "accuracy": 0.5} for s in ("fog", "contrast") for v in (1, 2, 3)]
    cells.append({"model": name, "dataset": "d", "kind": "clean", "stressor": "clean",
                  "severity": 0, "accuracy": 0.9})
    assert _figures.heatmap(cells, name, "d", tmp_path / "h.png") is not None
    fig = kept["fig"]
    fig.canvas.draw()
    box = fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width, (box, fig.bbox.width)
    assert "clean 90.0" in fig.axes[0].get_title()
