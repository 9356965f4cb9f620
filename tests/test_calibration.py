"""Calibration analysis: metrics against torchmetrics and slow references, temperature
scaling on synthetic predictors with a known answer, and the analysis end to end on a small
crafted store."""
import json
import math

import numpy as np
import pytest
import torch

from failmodes.analysis import get_analysis
from failmodes.analysis.calibration import calibrate_run, read_temperatures, shift_table
from failmodes.analysis.calibration._core import (
    CalibrationInputError,
    Scores,
    adaptive_ece,
    bins_ece,
    brier,
    cell_metrics,
    ece_mce,
    fit_temperature,
    nll,
    reliability_bins,
    risk_coverage,
    scores_from_logits,
    scores_from_rows,
    selective_accuracy,
)
from failmodes.store import CellKey, ResultsStore, is_validation, per_image_rows


def _calibrated(n=20000, c=10, scale=2.0, seed=0):
    """Logits whose softmax IS the label distribution: labels are drawn from it."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g) * scale
    y = torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
    return z, y


def _slow_ece(conf, correct, n_bins):
    """Top-label ECE and MCE with Python loops over equal-width bins [i/n, (i+1)/n)."""
    conf, correct = conf.tolist(), correct.tolist()
    ece, mce = 0.0, 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i, p in enumerate(conf) if lo <= p < hi or (b == n_bins - 1 and p == 1)]
        if not members:
            continue
        gap = abs(sum(correct[i] for i in members) / len(members)
                  - sum(conf[i] for i in members) / len(members))
        ece += gap * len(members) / len(conf)
        mce = max(mce, gap)
    return ece, mce


def _slow_adaptive_ece(conf, correct, n_bins):
    pairs = sorted(zip(conf.tolist(), correct.tolist()), key=lambda t: t[0])
    total = 0.0
    for chunk in np.array_split(np.arange(len(pairs)), n_bins):
        cs = [pairs[i][0] for i in chunk]
        ac = [pairs[i][1] for i in chunk]
        total += len(chunk) * abs(sum(ac) / len(ac) - sum(cs) / len(cs))
    return total / len(pairs)


# ------------------------------------------------------------------ the known answers
def test_perfectly_calibrated_predictor_has_near_zero_ece_and_unit_temperature():
    z, y = _calibrated()
    m = cell_metrics(scores_from_logits(z, y))
    # 20k samples over 15 bins: sampling noise alone gives ~0.005-0.01.
    assert m["ece"] < 0.015
    assert m["ece_adaptive"] < 0.015
    assert abs(m["mean_conf"] - m["accuracy"]) < 0.01
    assert abs(fit_temperature(z, y).temperature - 1.0) < 0.05


def test_overconfident_predictor_large_ece_that_temperature_scaling_removes():
    z, y = _calibrated(seed=1)
    over = 3 * z  # the same ranking, three times too sharp
    raw = cell_metrics(scores_from_logits(over, y))
    fit = fit_temperature(over, y)
    scaled = cell_metrics(scores_from_logits(over, y, fit.temperature))
    assert raw["ece"] > 0.2
    assert 2.8 < fit.temperature < 3.2, fit
    assert not fit.at_bound
    assert scaled["ece"] < 0.015 and scaled["ece"] < raw["ece"] / 10
    assert fit.nll_after < fit.nll_before
    assert scaled["nll"] < raw["nll"] and scaled["brier_sum"] < raw["brier_sum"]
    assert scaled["accuracy"] == raw["accuracy"]  # T never moves the argmax
    assert scaled["dangerous_rate"] < raw["dangerous_rate"]


def test_temperature_fit_is_the_nll_minimum_on_a_grid():
    z, y = _calibrated(n=3000, seed=2)
    z = 0.4 * z  # underconfident: the optimum is T < 1
    fit = fit_temperature(z, y)
    assert fit.temperature < 1
    for t in np.geomspace(0.05, 20, 60):
        assert fit.nll_after <= nll(z, y, float(t)) + 1e-9


def test_temperature_at_bound_when_data_cannot_pin_it():
    # Every prediction right with a clear margin: NLL falls all the way to T -> 0.
    y = torch.arange(100) % 4
    z = torch.nn.functional.one_hot(y, 4).float() * 5
    assert fit_temperature(z, y).at_bound


# ------------------------------------------------------------------ against references
@pytest.mark.parametrize("n_bins", [5, 15])
def test_ece_and_mce_equal_torchmetrics_and_a_slow_reference(n_bins):
    from torchmetrics.functional.classification import multiclass_calibration_error
    g = torch.Generator().manual_seed(3)
    probs = torch.softmax(torch.randn(3000, 7, generator=g) * 2.5, 1)
    labels = torch.randint(0, 7, (3000,), generator=g)
    s = scores_from_logits(probs.log(), labels)
    assert float(s.conf.max()) < 1.0  # no sample in torchmetrics' extra conf == 1 bin
    ece, mce = ece_mce(s.conf, s.correct, n_bins)
    tm_ece = float(multiclass_calibration_error(probs, labels, 7, n_bins=n_bins, norm="l1"))
    tm_mce = float(multiclass_calibration_error(probs, labels, 7, n_bins=n_bins, norm="max"))
    assert ece == pytest.approx(tm_ece, abs=1e-6)
    assert mce == pytest.approx(tm_mce, abs=1e-6)
    # The reliability diagram's bins reproduce the same numbers...
    b = reliability_bins(s.conf, s.correct, n_bins)
    assert b["count"].sum() == 3000 and len(b["count"]) == n_bins
    assert bins_ece(b) == pytest.approx((tm_ece, tm_mce), abs=1e-6)
    # ... and so does a Python loop.
    assert _slow_ece(s.conf.float().double(), s.correct, n_bins) == pytest.approx(
        (tm_ece, tm_mce), abs=1e-6)


def test_table_and_reliability_diagram_bin_alike_at_the_top_edge():
    # Known answer, 15 bins: 4 images of confidence exactly 1.0 (all right), 4 of 1 − 6e-8
    # (all wrong), 2 of 0.5 (one right). One float64 binning puts all 8 top ones in the
    # last (closed) bin: mean conf 1 − 3e-8, accuracy 4/8, gap 0.5 − 3e-8; the 0.5 bin has
    # gap 0. ECE = 8/10 · gap, MCE = gap. torchmetrics (float32) files 1.0 in an extra bin of
    # its own and 1 − 6e-8 in bin 14: its MCE is 1.0, while the diagram showed one bar of 0.5.
    from torchmetrics.functional.classification import binary_calibration_error
    conf = torch.tensor([1.0] * 4 + [1 - 6e-8] * 4 + [0.5] * 2, dtype=torch.float64)
    correct = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0, 1, 0], dtype=torch.bool)
    b = reliability_bins(conf, correct, 15)
    assert b["count"][-1] == 8 and b["count"][7] == 2 and b["count"].sum() == 10
    assert b["confidence"][-1] == pytest.approx(1 - 3e-8, abs=1e-15)
    gap = 0.5 - 3e-8
    ece, mce = ece_mce(conf, correct, 15)
    assert ece == pytest.approx(0.8 * gap, abs=1e-12) and mce == pytest.approx(gap, abs=1e-12)
    # The table's numbers are the diagram's numbers, always.
    assert (ece, mce) == bins_ece(b)
    m = cell_metrics(Scores(conf=conf, correct=correct, p_true=conf, entropy=conf * 0,
                            margin=conf, sq_norm=None, n_classes=2, nll=-conf.log()), n_bins=15)
    assert m["ece"] == ece and m["mce"] == mce
    old = float(binary_calibration_error(conf.float(), correct.long(), n_bins=15, norm="max"))
    assert old == pytest.approx(1.0, abs=1e-6)      # what the table used to say


def test_nll_comes_from_log_softmax():
    # A logit gap of 1000 against the label: p_true = e^-1000 underflows to 0 in float64,
    # yet the NLL is exactly 1000 nats (the clamped-probability version gave 690.8).
    z = torch.tensor([[1000.0, 0.0]])
    s = scores_from_logits(z, torch.tensor([1]))
    assert float(s.p_true[0]) == 0.0
    assert cell_metrics(s)["nll"] == pytest.approx(1000.0)


@pytest.mark.parametrize("n,n_bins", [(1000, 15), (997, 10), (7, 15)])
def test_adaptive_ece_equals_slow_reference(n, n_bins):
    g = torch.Generator().manual_seed(n)
    conf = torch.rand(n, generator=g, dtype=torch.float64)
    correct = torch.rand(n, generator=g, dtype=torch.float64) < conf ** 2
    assert adaptive_ece(conf, correct, n_bins) == pytest.approx(
        _slow_adaptive_ece(conf, correct, min(n_bins, n)), abs=1e-12)


def test_brier_and_nll_equal_their_definitions():
    z, y = _calibrated(n=500, c=5, seed=4)
    s = scores_from_logits(z, y)
    p = torch.softmax(z.double(), 1)
    onehot = torch.nn.functional.one_hot(y, 5).double()
    assert brier(s) == pytest.approx(float(((p - onehot) ** 2).sum(1).mean()), abs=1e-12)
    assert cell_metrics(s)["nll"] == pytest.approx(float(-p[torch.arange(500), y].log().mean()),
                                                   abs=1e-9)


def test_store_rows_give_the_same_numbers_as_logits_except_brier():
    z, y = _calibrated(n=800, c=6, seed=5)
    rows = per_image_rows(z, y, torch.arange(800))
    a = cell_metrics(scores_from_logits(z, y))
    b = cell_metrics(scores_from_rows(rows, 6))
    assert math.isnan(b["brier_sum"]) and not math.isnan(a["brier_sum"])
    for k in ("accuracy", "ece", "ece_adaptive", "mce", "nll", "dangerous_rate", "auroc_msp",
              "auroc_entropy", "auroc_margin", "acc_at_cov80"):
        assert b[k] == pytest.approx(a[k], abs=1e-4), k


# ------------------------------------------------------------------ failure prediction
def test_perfect_error_detector_has_auroc_and_aupr_one():
    y = torch.arange(200) % 4
    z = torch.zeros(200, 4)
    right = torch.arange(200) % 3 != 0
    z[right, :] = torch.nn.functional.one_hot(y[right], 4).float() * 6  # sure and right
    wrong_class = (y[~right] + 1) % 4
    z[~right, :] = torch.nn.functional.one_hot(wrong_class, 4).float() * 0.5  # unsure, wrong
    m = cell_metrics(scores_from_logits(z, y))
    assert m["accuracy"] == pytest.approx(float(right.double().mean()))
    for det in ("msp", "entropy", "margin"):
        assert m[f"auroc_{det}"] == pytest.approx(1.0)
        assert m[f"aupr_{det}"] == pytest.approx(1.0)
    # Selective prediction keeps only right answers until coverage passes the accuracy.
    assert m["acc_at_cov80"] == pytest.approx(float(right.sum()) / math.ceil(0.8 * 200))
    assert m["dangerous_rate"] == 0.0


def test_detection_undefined_without_errors():
    y = torch.arange(50) % 5
    m = cell_metrics(scores_from_logits(torch.nn.functional.one_hot(y, 5).float() * 3, y))
    assert math.isnan(m["auroc_msp"]) and math.isnan(m["dangerous_share"])


def test_risk_coverage_on_a_hand_example():
    conf = torch.tensor([0.9, 0.8, 0.7, 0.6], dtype=torch.float64)
    correct = torch.tensor([True, False, True, False])
    cov, risk = risk_coverage(conf, correct)
    np.testing.assert_allclose(cov, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0.0, 0.5, 1 / 3, 0.5])
    assert selective_accuracy(cov, risk, 0.5) == pytest.approx(0.5)
    assert selective_accuracy(cov, risk, 0.8) == pytest.approx(0.5)  # keeps ceil(3.2) = 4


def test_dangerous_rate_counts_confident_errors():
    # Row 0: right at 0.95; rows 1-2: wrong at ~0.97; row 3: wrong at ~0.5.
    z = torch.tensor([[3.0, 0.0], [0.0, 3.5], [0.0, 3.5], [0.0, 0.01]])
    y = torch.tensor([0, 0, 0, 0])
    m = cell_metrics(scores_from_logits(z, y))
    assert m["dangerous_rate"] == pytest.approx(0.5)
    assert m["dangerous_share"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------ bad input
def test_nan_logits_are_rejected_with_a_clear_error():
    z, y = _calibrated(n=10, c=3)
    z[4, 1] = float("nan")
    with pytest.raises(CalibrationInputError, match=r"NaN or inf in 1 of 10 rows.*row 4"):
        scores_from_logits(z, y)
    with pytest.raises(CalibrationInputError, match="NaN"):
        fit_temperature(z, y)


def test_bad_shapes_labels_and_bins_are_rejected():
    z, y = _calibrated(n=10, c=3)
    with pytest.raises(CalibrationInputError, match="labels"):
        scores_from_logits(z, y[:5])
    with pytest.raises(CalibrationInputError, match=r"\[0, 3\)"):
        scores_from_logits(z, y + 5)
    with pytest.raises(CalibrationInputError, match="bins"):
        reliability_bins(torch.rand(5), torch.ones(5, dtype=torch.bool), 0)
    with pytest.raises(CalibrationInputError, match="temperature"):
        scores_from_logits(z, y, temperature=0.0)


# ------------------------------------------------------------------ the analysis end to end
N, C, SCALE = 600, 5, 3.0


HELD_OUT = {"train_data": {"val_split": "train-val", "val_fraction": 0.1, "split_seed": 42}}


def _make_store(path, *, with_val=True, nan_cell=False, meta=HELD_OUT):
    """One model whose logits are SCALE x too sharp; noise grows with severity."""
    store = ResultsStore(path)
    store.register_model("toy", spec="toy", arch="toy", weights_hash="h",
                         class_names=[f"c{i}" for i in range(C)], meta=meta)
    g = torch.Generator().manual_seed(0)

    def cell(dataset, stressor, sev, noise):
        z = torch.randn(N, C, generator=g) * 2.0
        y = torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
        obs = SCALE * (z + noise * torch.randn(N, C, generator=g))
        cid = store.write_cell(CellKey("toy", dataset, stressor, sev),
                               per_image_rows(obs, y, torch.arange(N)))
        if nan_cell and stressor == "gaussian_noise" and sev == 3:
            # A damaged row: the evaluator never stores NaN, so write it behind its back.
            bad = obs[7].numpy().copy()
            bad[2] = np.nan
            with store.db:
                store.db.execute("UPDATE predictions SET logits=? WHERE cell_id=? AND idx=7",
                                 (bad.astype(np.float32).tobytes(), cid))

    if with_val:
        cell("synthetic:train-val@600", "clean", 0.0, 0.0)  # the engine's subset key
    cell("synthetic:test", "clean", 0.0, 0.0)
    for s in (1, 3, 5):
        cell("synthetic:test", "gaussian_noise", float(s), 0.4 * s)
    store.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    _make_store(d / "results.sqlite")
    return d, calibrate_run(d, d / "out", n_bins=10)


def test_analysis_writes_json_figures_and_temperature(run):
    d, result = run
    on_disk = json.loads((d / "out" / "calibration.json").read_text())
    assert set(on_disk) >= {"name", "params", "per_model", "figures", "tables", "notes", "data"}
    assert on_disk["params"]["n_bins"] == 10 and "temperatures" in on_disk["data"]
    assert len(result.figures) == 5
    for f in result.figures:
        p = d / "out" / f.path
        assert p.suffix == ".png" and p.stat().st_size > 5000 and f.caption
    t = result.data["temperatures"]["toy"]
    assert 2.3 < t["temperature"] < 3.7 and t["fitted_on"].startswith("synthetic:train-val")
    # The same T is in the store for other analyses.
    assert read_temperatures(d / "results.sqlite")["toy"]["temperature"] == pytest.approx(
        t["temperature"])
    assert result.per_model["toy"]["temperature"] == pytest.approx(t["temperature"])
    (head,) = result.tables["models"]
    assert head["ece_clean"] > head["ece_clean_ts"] and head["ece_shifted"] > head["ece_clean_ts"]
    assert result.per_model["toy"]["ece_shifted_ts"] == head["ece_shifted_ts"]


def test_analysis_tables_report_before_and_after_per_family(run):
    _, result = run
    cells = result.tables["cells"]
    assert len(cells) == 4 and all(r["n"] == N for r in cells)  # the val cell is not reported
    fam = {r["family"]: r for r in result.tables["families"]}
    assert set(fam) == {"clean", "noise", "corruptions"}
    assert fam["noise"]["n_cells"] == 3
    assert fam["clean"]["ece"] > 0.15 and fam["clean"]["ece_ts"] < 0.08
    # Clean-fitted T helps under shift too, but the shifted cells stay worse calibrated.
    assert fam["noise"]["ece_ts"] < fam["noise"]["ece"]
    assert fam["noise"]["ece_ts"] > fam["clean"]["ece_ts"]
    sev = [r["severity"] for r in result.tables["severities"]]
    assert sev == [0.0, 1.0, 3.0, 5.0]
    rel = result.data["reliability"]["toy"]
    assert [p["title"].split(" ")[0] for p in rel] == ["clean", "severity"]
    assert sum(rel[1]["raw"]["count"]) == N
    curves = result.data["risk_coverage"]["toy"]["curves"]
    assert set(curves) == {"clean", "severity 1", "severity 3", "severity 5"}
    assert curves["clean"]["raw"][-1] == pytest.approx(1 - fam["clean"]["accuracy"])
    header, rows = shift_table(result)
    assert len(rows) == 3 and "->" in rows[0][header.index("ECE")]


def test_validation_keys():
    assert is_validation("cifar10:train-val") and is_validation("cifar10:train-val@5000")
    assert not is_validation("cifar10:test@2000") and not is_validation("cifar10c-official:test")


def test_analysis_is_registered():
    assert get_analysis("calibration").fn is calibrate_run


def test_without_validation_cell_fits_on_half_and_says_so(tmp_path):
    _make_store(tmp_path / "results.sqlite", with_val=False)
    result = calibrate_run(tmp_path, tmp_path / "out")
    assert any(n.startswith("WARNING toy") and "half" in n for n in result.notes)
    assert "train-val" not in result.data["temperatures"]["toy"]["fitted_on"]
    assert all(r["n"] == N // 2 for r in result.tables["cells"])
    assert "random half" in result.data["temperatures"]["toy"]["fitted_on"]
    assert result.data["temperatures"]["toy"]["n_fit"] == N // 2


@pytest.mark.parametrize("meta,why", [
    (None, "training split is unknown"),          # external checkpoint / registry model
    ({"train_data": {"val_split": None, "val_fraction": 0.0, "split_seed": 42}},
     "held out nothing"),                         # trained on all of train: val was seen
    ({"train_data": {"val_split": "train-val", "val_fraction": 0.2, "split_seed": 42}},
     "fraction 0.2")])
def test_validation_cell_is_used_only_when_the_checkpoint_held_it_out(tmp_path, meta, why):
    _make_store(tmp_path / "results.sqlite", meta=meta)
    result = calibrate_run(tmp_path, tmp_path / "out")
    t = result.data["temperatures"]["toy"]
    assert "random half" in t["fitted_on"] and t["n_fit"] == N // 2
    note = next(n for n in result.notes if "is not used for T" in n)
    assert why in note and "train-val@600" in note
    assert all(r["n"] == N // 2 for r in result.tables["cells"])
    with pytest.raises(CalibrationInputError, match="refusing to fit T on synthetic:train-val"):
        calibrate_run(tmp_path, tmp_path / "out2", strict=True)


def test_nan_cell_in_store_stops_the_analysis_naming_the_cell(tmp_path):
    _make_store(tmp_path / "results.sqlite", nan_cell=True)
    with pytest.raises(CalibrationInputError, match=r"gaussian_noise@3 .*NaN"):
        calibrate_run(tmp_path, tmp_path / "out")


def test_cli_calibrate(run, tmp_path):
    from typer.testing import CliRunner

    from failmodes.cli import app
    d, _ = run
    res = CliRunner().invoke(app, ["calibrate", str(d), "--out", str(tmp_path), "--bins", "10"],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "corruptions" in res.output and (tmp_path / "calibration.json").is_file()
    bad = CliRunner().invoke(app, ["calibrate", str(tmp_path / "nope")])
    assert bad.exit_code != 0 and "no results store" in bad.output


def test_without_any_clean_cell_reports_raw_numbers_and_no_temperature(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    store.register_model("toy", spec="toy", arch="toy", weights_hash="h", class_names=["a", "b"])
    z, y = _calibrated(n=200, c=2, seed=6)
    store.write_cell(CellKey("toy", "synthetic:test", "gaussian_noise", 2.0),
                     per_image_rows(z, y, torch.arange(200)))
    store.close()
    result = calibrate_run(tmp_path, tmp_path / "out")
    assert any(n.startswith("NO TEMPERATURE for toy") for n in result.notes)
    (row,) = result.tables["cells"]
    assert row["ece"] >= 0 and math.isnan(row["ece_ts"])
    assert result.data["temperatures"]["toy"]["temperature"] is None
    assert read_temperatures(tmp_path / "results.sqlite") == {}


def test_checkpoint_split_reaches_the_store_meta(tmp_path):
    # A failmodes checkpoint records what training held out; the evaluator copies it into
    # the store's model meta, where the temperature fit reads it.
    from failmodes.analysis.calibration.temperature import validation_ok
    from failmodes.evaluate.inputs import build_model
    from failmodes.models import create_model, save_checkpoint
    m = create_model("small_cnn", width=4)
    held = {"val_split": "train-val", "val_fraction": 0.1, "split_seed": 42}
    save_checkpoint(m, tmp_path / "held.pt", extra={"data": held})
    save_checkpoint(m, tmp_path / "all.pt", extra={"data": {"val_split": None,
                                                              "val_fraction": 0.0,
                                                              "split_seed": 42}})
    _, meta = build_model(str(tmp_path / "held.pt"))
    assert meta["train_data"] == held and validation_ok(meta)[0]
    _, meta = build_model(str(tmp_path / "all.pt"))
    ok, why = validation_ok(meta)
    assert not ok and "held out nothing" in why
    _, meta = build_model({"arch": "small_cnn", "arch_args": {"width": 4}})
    ok, why = validation_ok(meta)          # a registry model: who knows what it saw
    assert not ok and "unknown" in why


def test_clean_ece_has_an_interval_and_the_floor_of_a_calibrated_model(run):
    # The toy logits are SCALE x too sharp: before T the clean ECE lies above the floor of a
    # perfectly calibrated model with the same confidences; after T the predictions are
    # calibrated by construction (labels drawn from softmax(z)), inside the floor's band.
    _, result = run
    (head,) = result.tables["models"]
    for s in ("", "_ts"):
        assert head[f"ece_clean{s}_ci_low"] < head[f"ece_clean{s}"] < head[f"ece_clean{s}_ci_high"]
        assert 0 < head[f"ece_clean{s}_floor"] < head[f"ece_clean{s}_floor_q95"]
    assert head["ece_clean"] > head["ece_clean_floor_q95"]
    assert head["ece_clean_ts"] <= head["ece_clean_ts_floor_q95"]
    (note,) = [n for n in result.notes if "perfectly calibrated" in n and "clean ECE" in n]
    assert "above that floor" in note and "indistinguishable from perfect calibration" in note
    # The shifted mean of cells carries the same: 3 noise cells of the same images; the
    # toy logits are too sharp before T, so the shifted mean lies above its floor there.
    for s in ("", "_ts"):
        lo, hi = head[f"ece_shifted{s}_ci_low"], head[f"ece_shifted{s}_ci_high"]
        assert lo < hi and 0 < head[f"ece_shifted{s}_floor"] < head[f"ece_shifted{s}_floor_q95"]
    assert head["ece_shifted_ci_low"] > head["ece_shifted_floor_q95"]
    assert head["n_shifted_cells"] == 3 and head["n_shifted_images"] == N
    (shifted,) = [n for n in result.notes if n.startswith("toy: shifted ECE, mean of 3")]
    assert "each cell's confidences" in shifted and "above that floor" in shifted
    # Two aggregations, two names: the pooled severity panel vs the tables' mean of cells.
    rel = result.data["reliability"]["toy"]
    assert [p["ece_kind"] for p in rel] == ["cell", "pooled"]
    assert result.tables["severities"][1]["level"] == "mean of corruption cells"
