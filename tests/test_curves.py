"""Curves analysis on crafted stores: regimes per corruption, family drops, ranking, headline."""
import dataclasses
import json

import numpy as np
import pytest
from synthetic_store import curve, write_store

from failmodes.analysis import curves as curves_mod
from failmodes.analysis import get_analysis
from failmodes.analysis.curves import curve_points, curves, fit_regime
from failmodes.store import UNKNOWN, ResultsStore, StressorInfo

# The published families, used only for names the stressor registry does not hold yet.
FAMILY = {"gaussian_noise": "noise", "motion_blur": "blur", "fog": "weather",
          "contrast": "digital", "snow": "weather", "rotation": "sweep"}
SHAPES = {"contrast": "linear", "fog": "threshold-collapse",
          "motion_blur": "early-damage-plateau", "snow": "graceful"}


@pytest.fixture
def families(monkeypatch):
    real = curves_mod.stressor_info

    def info(name):
        i = real(name)
        return dataclasses.replace(i, family=FAMILY.get(name, i.family)) if i.family == UNKNOWN \
            else i
    monkeypatch.setattr(curves_mod, "stressor_info", info)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    levels = [1, 2, 3, 4, 5]
    cv = {name: curve(shape, levels) for name, shape in SHAPES.items()}
    cv["gaussian_noise"] = {1.0: 0.8, 2.0: 0.6, 3.0: 0.4, 4.0: 0.25, 5.0: 0.15}
    path = tmp_path_factory.mktemp("run")
    write_store(path / "results.sqlite", cv, n=2000, seeds=(0, 1)).close()
    return path


@pytest.fixture
def run_dir(store_dir, families):
    return store_dir


def test_store_curves_get_their_regimes(run_dir, tmp_path):
    out = tmp_path / "out"
    res = curves(run_dir, out)
    reg = {r["stressor"]: r["regime"] for r in res.tables["regimes"]}
    for name, shape in SHAPES.items():
        assert reg[name] == shape, (name, reg)
    fog = next(r for r in res.tables["regimes"] if r["stressor"] == "fog")
    assert abs(fog["breakpoint"] - 3.0) < 0.5 and fog["slope_after"] > 15
    # clean is severity 0 of every curve and seeds are pooled
    pts = [r for r in res.tables["curves"] if r["stressor"] == "fog"]
    assert [p["severity"] for p in pts] == [0, 1, 2, 3, 4, 5]
    assert pts[0]["n"] == 4000 and pts[0]["accuracy"] == pytest.approx(0.9)
    # written JSON and figures
    saved = json.loads((out / "curves.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(res.summary))
    for f in res.figures:
        assert (out / f.path).stat().st_size > 1000


def test_headline_family_and_ranking(run_dir, tmp_path):
    res = curves(run_dir, tmp_path / "out")
    s = res.summary
    # gaussian_noise loses 75 points at severity 5: the largest drop in the store
    assert s["headline"] == "largest drop: 75.0 points under gaussian_noise at severity 5"
    assert s["largest_drop_stressor"] == "gaussian_noise" and s["largest_drop_severity"] == 5
    rank = [r["stressor"] for r in res.tables["damage_ranking"]]
    assert rank[0] == "gaussian_noise" and rank[-1] == "snow"
    fam = {r["family"]: r for r in res.tables["family_drops"]}
    assert set(fam) == {"noise", "blur", "weather", "digital"}
    assert fam["noise"]["mean_drop"] == pytest.approx(100 * (0.9 - (0.8 + 0.6 + 0.4 + 0.25 + 0.15) / 5))
    # weather averages fog and snow
    fog = next(r for r in res.tables["damage_ranking"] if r["stressor"] == "fog")
    bri = next(r for r in res.tables["damage_ranking"] if r["stressor"] == "snow")
    assert fam["weather"]["mean_drop"] == pytest.approx((fog["mean_drop"] + bri["mean_drop"]) / 2)
    pm = res.per_model["m"]
    assert pm["n_graceful"] == 1 and pm["n_threshold_collapse"] == 1 and pm["n_undetermined"] == 0


def test_two_sided_sweep_is_folded(tmp_path, families):
    # rotation: symmetric damage around 0°, threshold past 90°
    pts = {float(a): (0.9 if abs(a) <= 90 else 0.9 - 0.006 * (abs(a) - 90))
           for a in range(-180, 181, 15) if a != 0}
    write_store(tmp_path / "results.sqlite", {"rotation": pts}, n=2000).close()
    with ResultsStore(tmp_path / "results.sqlite", readonly=True) as st:
        rows = curve_points(st)
    regime, folded = fit_regime(rows)
    assert folded and regime.label == "threshold-collapse" and abs(regime.breakpoint - 90) <= 15


def test_one_sided_sweep_uses_distance_from_identity(tmp_path, monkeypatch):
    # jpeg_quality: identity 101, damage grows as quality falls; collapse below quality 41
    monkeypatch.setattr(curves_mod, "stressor_info",
                        lambda name: StressorInfo("sweep", "sweep", False, 101.0))
    pts = {float(q): (0.9 if q >= 41 else 0.9 - 0.015 * (41 - q)) for q in range(1, 101, 10)}
    write_store(tmp_path / "results.sqlite", {"jpeg_quality": pts}, n=2000).close()
    with ResultsStore(tmp_path / "results.sqlite", readonly=True) as st:
        rows = curve_points(st)
    assert rows[-1]["severity"] == 101.0 and rows[-1]["accuracy"] == pytest.approx(0.9)
    regime, folded = fit_regime(rows)
    assert not folded and regime.label == "threshold-collapse"
    assert abs(regime.breakpoint - 60) <= 10          # 101 − 41


def test_registered_and_few_severities(tmp_path, families):
    assert get_analysis("curves").order == 20
    write_store(tmp_path / "results.sqlite", {"fog": {3.0: 0.5}}).close()
    res = curves(tmp_path, tmp_path / "out")
    row = res.tables["regimes"][0]
    # clean + one severity: only the flat shape fits, so no regime is claimed
    assert row["regime"] == "undetermined" and "2 distinct severities" in row["reason"]
    assert row["confidence"] == "n/a"
    assert res.summary["headline"].startswith("largest drop: 40.0 points under fog")


def test_official_cells_borrow_the_main_clean_cell(tmp_path, families):
    db = tmp_path / "results.sqlite"
    write_store(db, {"fog": {1.0: 0.8}}, n=200, dataset="cifar10:test@200", clean_acc=0.9).close()
    write_store(db, {"fog": {1.0: 0.7, 2.0: 0.6}}, n=200, dataset="cifar10c-official:test@200",
                clean_acc=0.5).close()
    with ResultsStore(db) as st:  # drop the official clean cell write_store added
        st.db.execute("DELETE FROM cells WHERE dataset LIKE 'cifar10c-official%' "
                      "AND stressor='clean'")
        st.db.commit()
        rows = curve_points(st)
    off = [r for r in rows if r["dataset"].startswith("cifar10c-official")]
    assert [r["severity"] for r in off] == [0, 1, 2]
    assert off[0]["accuracy"] == pytest.approx(0.9) and off[0]["clean_accuracy"] == pytest.approx(0.9)


def test_plateau_at_chance_is_flagged(tmp_path, families):
    # early damage that bottoms out at 10 % on a 10-class model: the chance floor
    pts = {float(s): 0.10 + 0.80 * np.exp(-s / 0.5) for s in (1, 2, 3, 4, 5)}
    write_store(tmp_path / "results.sqlite", {"gaussian_noise": pts, "motion_blur":
                curve("early-damage-plateau", [1, 2, 3, 4, 5])}, n=2000).close()
    res = curves(tmp_path, tmp_path / "out")
    rows = {r["stressor"]: r for r in res.tables["regimes"]}
    assert rows["gaussian_noise"]["regime"] == "early-damage-plateau"
    assert rows["gaussian_noise"]["plateau_at_chance"] is True
    assert rows["motion_blur"]["plateau_at_chance"] is False     # plateau at 50 %
    assert any("chance accuracy" in n and "gaussian_noise" in n for n in res.notes)


def test_confidence_rising_under_shift_is_noted(tmp_path, families):
    # wrong answers are more confident (0.97) than right ones (0.8): conf rises with damage
    write_store(tmp_path / "results.sqlite", {"gaussian_noise": {1.0: 0.7, 3.0: 0.4},
                "snow": {1.0: 0.9, 3.0: 0.89}}, n=500, conf_wrong=0.97).close()
    res = curves(tmp_path, tmp_path / "out")
    note = next(n for n in res.notes if "confidence rises" in n)
    assert "gaussian_noise" in note and "snow" not in note


def test_seeds_on_the_same_images_do_not_shrink_the_sampling_floor(tmp_path, families):
    # Three stressor seeds on the same 500 images are 500 images, not 1500: the regime fit
    # (its BIC, which carries the binomial floor) equals the one-seed fit of the same curve.
    cv = {"fog": {1.0: 0.9, 2.0: 0.9, 3.0: 0.88, 4.0: 0.70, 5.0: 0.52}}
    one = write_store(tmp_path / "one.sqlite", cv, n=500, seeds=(0,))
    three = write_store(tmp_path / "three.sqlite", cv, n=500, seeds=(0, 1, 2))
    p1, p3 = curve_points(one), curve_points(three)
    one.close()
    three.close()
    assert [p["n_images"] for p in p3] == [500] * 6 and [p["n"] for p in p3] == [1500] * 6
    r1, _ = fit_regime([p for p in p1 if p["stressor"] == "fog"])
    r3, _ = fit_regime([p for p in p3 if p["stressor"] == "fog"])
    assert {s: f.bic for s, f in r3.fits.items()} == pytest.approx(
        {s: f.bic for s, f in r1.fits.items()})


def test_regimes_table_reports_each_labels_share_of_resamples(run_dir, tmp_path):
    res = curves(run_dir, tmp_path / "out")
    fog = next(r for r in res.tables["regimes"] if r["stressor"] == "fog")
    # A 44-point collapse on 2000 images: every paired resample reads a collapse.
    assert fog["share_threshold_collapse"] == 1.0 and fog["share_linear"] == 0.0
    assert fog["label_shares"] == "threshold-collapse 100 %"
    assert fog["confidence"] == "100 % of resamples"
    assert fog["n_resamples"] == 200 and fog["n_images"] == 2000
    for r in res.tables["regimes"]:
        assert sum(r[k] for k in r if k.startswith("share_")) == pytest.approx(1.0)
