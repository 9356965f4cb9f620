"""Label-free accuracy estimation, shift tests and nearest cells (failmodes.estimate).

Known answers, decided before running:
- a calibrated-by-construction predictor (confidence c drawn, then right with probability
  c): AC, DoC and COT equal the target's accuracy E_T[c] up to sampling, T ≈ 1;
- a separable predictor (right exactly when c > 0.6): ATC (both scores) equals P_T(c > 0.6);
- an overconfident predictor (right with probability c − 0.1 on source and target): DoC is
  exact, AC is 0.1 too high;
- the 95 % bootstrap intervals cover the population value in 90–99 % of 200 simulations;
- ATC's threshold equals a slow scan's; COT's transport equals linear_sum_assignment's;
- KS statistics and p-values equal scipy's ks_2samp(method="asymp"); Bonferroni KS and
  the MMD permutation test raise false alarms in ≤ 5 % (+ 3 binomial SDs) of null
  resamples and detect clear shifts; MMD² equals a slow double loop;
- the output distance equals scipy's 1-D Wasserstein distance averaged over classes, and a
  batch drawn like a stored cell finds that cell first.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.stats import ks_2samp, wasserstein_distance
from torch import nn

from failmodes.errors import FailmodesError
from failmodes.estimate import (
    EstimateError,
    accuracy,
    atc_threshold,
    bootstrap_means,
    estimate_accuracy,
    estimator_names,
    fit_reference,
    ks_test,
    mmd_test,
    nearest_cells,
    output_distance,
    output_quantiles,
    stored_cell_outputs,
    transport_gain,
)
from failmodes.estimate.nearest import CellOutputs
from failmodes.estimate.shift import (
    ks_detection_rate,
    ks_statistics,
    median_bandwidth,
    mmd2_unbiased,
)
from failmodes.store import Cell

C = 10


def _predictor(conf: np.ndarray, p_right: np.ndarray, rng: np.random.Generator,
               n_classes: int = C):
    """Logits whose softmax puts ``conf`` on a uniformly drawn predicted class and spreads
    the rest evenly; the label is that class with probability ``p_right``, else another
    class drawn uniformly."""
    n = len(conf)
    pred = rng.integers(0, n_classes, n)
    p = np.repeat(((1 - conf) / (n_classes - 1))[:, None], n_classes, axis=1)
    p[np.arange(n), pred] = conf
    right = rng.random(n) < p_right
    other = (pred + rng.integers(1, n_classes, n)) % n_classes
    labels = np.where(right, pred, other)
    return torch.from_numpy(np.log(p)), torch.from_numpy(labels)


def _by_name(ests):
    return {e.name: e for e in ests}


def test_calibrated_predictor_ac_doc_cot_are_exact():
    rng = np.random.default_rng(0)
    c_src = rng.uniform(0.3, 1.0, 20000)
    src, ys = _predictor(c_src, c_src, rng)
    c_tgt = rng.uniform(0.2, 0.8, 20000)        # truth: E_T[c] = 0.5
    tgt, yt = _predictor(c_tgt, c_tgt, rng)
    ref = fit_reference(src, ys)
    assert abs(ref.temperature - 1) < 0.05      # calibrated by construction
    est = _by_name(estimate_accuracy(ref, tgt, n_boot=200))
    for name in ("AC", "DoC", "COT", "AC-TS", "DoC-TS", "COT-TS"):
        assert abs(est[name].accuracy - 0.5) < 0.01, name
        assert est[name].low <= est[name].accuracy <= est[name].high
    # COT never exceeds AC (the transport is AC's argmax assignment under a constraint).
    assert est["COT"].accuracy <= est["AC"].accuracy + 1e-12
    # The sample's own accuracy agrees with the population value it was drawn around.
    assert abs(float((tgt.argmax(1) == yt).double().mean()) - 0.5) < 0.01


def test_separable_predictor_atc_is_exact_and_ac_is_not():
    rng = np.random.default_rng(1)
    c_src = rng.uniform(0.2, 1.0, 20000)
    src, ys = _predictor(c_src, (c_src > 0.6).astype(float), rng)
    c_tgt = rng.uniform(0.4, 1.0, 20000)        # truth: P(c > 0.6) = 2/3
    tgt, yt = _predictor(c_tgt, (c_tgt > 0.6).astype(float), rng)
    est = _by_name(estimate_accuracy(fit_reference(src, ys), tgt, n_boot=200,
                                     methods=("AC", "ATC-MC", "ATC-NE")))
    truth = 2 / 3
    assert abs(float((tgt.argmax(1) == yt).double().mean()) - truth) < 0.01
    for name in ("ATC-MC", "ATC-NE", "ATC-MC-TS", "ATC-NE-TS"):
        assert abs(est[name].accuracy - truth) < 0.01, name
    assert abs(est["AC"].accuracy - 0.7) < 0.01  # E_T[c] = 0.7, not the accuracy


def test_doc_is_exact_under_a_constant_calibration_gap():
    rng = np.random.default_rng(2)
    c_src = rng.uniform(0.4, 1.0, 20000)        # accuracy 0.7 − 0.1
    src, ys = _predictor(c_src, c_src - 0.1, rng)
    c_tgt = rng.uniform(0.3, 0.8, 20000)        # truth: 0.55 − 0.1 = 0.45
    tgt, _ = _predictor(c_tgt, c_tgt - 0.1, rng)
    est = _by_name(estimate_accuracy(fit_reference(src, ys, temperature=1.0), tgt, n_boot=100,
                                     methods=("AC", "DoC")))
    assert abs(est["DoC"].accuracy - 0.45) < 0.01
    assert abs(est["AC"].accuracy - 0.55) < 0.01


def test_atc_threshold_matches_a_slow_scan():
    rng = np.random.default_rng(3)
    for n, k in ((50, 31), (7, 1), (7, 6), (200, 100)):
        s = torch.from_numpy(rng.normal(size=n))
        t = atc_threshold(s, k)
        ordered = sorted(float(v) for v in s)
        cands = [(a + b) / 2 for a, b in zip(ordered, ordered[1:])]
        found = [c for c in cands if sum(float(v) > c for v in s) == k]
        assert found == [t]
    s = torch.tensor([0.1, 0.5, 0.9])
    assert atc_threshold(s, 3) == -math.inf and atc_threshold(s, 0) == math.inf


def test_bootstrap_matches_the_normal_interval_of_a_mean():
    x = torch.from_numpy(np.random.default_rng(4).exponential(size=4000))
    lo, hi = bootstrap_means(x, n_boot=2000, seed=1)
    se = float(x.std()) / math.sqrt(len(x))
    assert abs((float(hi) - float(lo)) / (2 * 1.96 * se) - 1) < 0.1
    assert abs((float(hi) + float(lo)) / 2 - float(x.mean())) < 0.3 * se
    again = bootstrap_means(x, n_boot=2000, seed=1)
    assert torch.equal(again[0], lo) and torch.equal(again[1], hi)


def test_intervals_cover_the_population_value_in_about_95_percent():
    rng = np.random.default_rng(5)
    c_src = rng.uniform(0.2, 1.0, 20000)
    src, ys = _predictor(c_src, c_src, rng)
    ref_cal = fit_reference(src, ys, temperature=1.0)
    src2, ys2 = _predictor(c_src, (c_src > 0.6).astype(float), rng)
    ref_sep = fit_reference(src2, ys2, temperature=1.0)
    t_hat = ref_sep.thresholds[""]["MC"]
    hits = {"AC": 0, "ATC-MC": 0}
    reps = 200
    for r in range(reps):
        c = rng.uniform(0.4, 1.0, 1000)
        tgt, _ = _predictor(c, c, rng)
        e = _by_name(estimate_accuracy(ref_cal, tgt, methods=("AC",), n_boot=400, seed=r))
        hits["AC"] += e["AC"].low <= 0.7 <= e["AC"].high           # E_T[c] = 0.7
        e = _by_name(estimate_accuracy(ref_sep, tgt, methods=("ATC-MC",), n_boot=400, seed=r))
        truth = (1 - t_hat) / 0.6                                  # P_T(c > t̂)
        hits["ATC-MC"] += e["ATC-MC"].low <= truth <= e["ATC-MC"].high
    for name, h in hits.items():
        assert 0.90 <= h / reps <= 0.99, (name, h / reps)


def test_transport_matches_linear_sum_assignment():
    rng = np.random.default_rng(6)
    for n, c in ((40, 3), (90, 5), (60, 10)):
        p = torch.from_numpy(rng.dirichlet(np.full(c, 0.5), size=n))
        counts = rng.multinomial(n - c, np.full(c, 1 / c)) + 1
        cols = np.repeat(np.arange(c), counts)
        cost = 1 - p.numpy()[:, cols]
        r, k = linear_sum_assignment(cost)
        g = transport_gain(p, torch.from_numpy(counts / n))
        assert abs(g.gain - (1 - cost[r, k].mean())) < 1e-9
        assert g.gain <= float(p.amax(1).mean()) + 1e-12
    # A class absent from the source marginal receives nothing.
    p = torch.tensor([[0.1, 0.9], [0.2, 0.8]], dtype=torch.float64)
    assert abs(transport_gain(p, torch.tensor([1.0, 0.0], dtype=torch.float64)).gain - 0.15) < 1e-12


def test_cot_interval_linearisation_matches_resolving_each_resample():
    # COT's bootstrap reuses the full sample's dual (first order); re-solving the transport
    # on every resample must give nearly the same spread.
    rng = np.random.default_rng(15)
    p = torch.from_numpy(rng.dirichlet(np.full(C, 0.4), size=1000))
    pi = torch.from_numpy(rng.dirichlet(np.full(C, 20.0)))
    g = transport_gain(p, pi)
    off = float((pi * g.dual).sum())
    full, lin = [], []
    for _ in range(60):
        idx = torch.from_numpy(rng.integers(0, 1000, 1000))
        full.append(transport_gain(p[idx], pi).gain)
        lin.append(off + float(g.per_image[idx].mean()))
    full_a, lin_a = np.array(full), np.array(lin)
    assert 0.85 <= lin_a.std() / full_a.std() <= 1.15
    assert np.corrcoef(full_a, lin_a)[0, 1] > 0.95
    assert np.all(lin_a >= full_a - 1e-9)      # a fixed dual bounds each resample's optimum


def test_ks_matches_scipy():
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.dirichlet(np.ones(4), size=300))
    y = torch.from_numpy(rng.dirichlet(np.ones(4) * 0.8, size=250))
    r = ks_test(x, y)
    for k in range(4):
        ref = ks_2samp(x[:, k].numpy(), y[:, k].numpy(), method="asymp")
        assert abs(r.statistics[k] - ref.statistic) < 1e-12
        assert abs(r.p_values[k] - ref.pvalue) < 1e-9
    assert r.p_value == pytest.approx(min(1.0, 4 * min(r.p_values)))
    assert torch.allclose(ks_statistics(x, x), torch.zeros(4, dtype=torch.float64))


def test_ks_false_alarms_and_power():
    rng = np.random.default_rng(8)
    reps, alarms, detected = 200, 0, 0
    for _ in range(reps):
        a = rng.dirichlet(np.ones(C), size=500)
        b = rng.dirichlet(np.ones(C), size=500)
        alarms += ks_test(a, b).shifted
        detected += ks_test(a, rng.dirichlet(np.ones(C) * 0.6, size=500)).shifted
    assert alarms / reps <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)
    assert detected / reps >= 0.95


def test_ks_detection_rate_makes_ks_tests_decisions():
    rng = np.random.default_rng(14)
    ref = rng.dirichlet(np.ones(C), size=2000)
    tgt = rng.dirichlet(np.ones(C) * 0.85, size=1500)     # a mild shift: some flagged, some not
    rate, batch = ks_detection_rate(ref, tgt, batch=300, resamples=40, seed=3)
    draws = np.random.default_rng(3)
    want = np.mean([ks_test(ref, tgt[draws.permutation(1500)[:300]]).shifted for _ in range(40)])
    assert batch == 300 and rate == want and 0 < rate < 1
    assert ks_detection_rate(ref, tgt[:100], batch=300, resamples=40) == \
        (float(ks_test(ref, tgt[:100]).shifted), 100)


def test_mmd_statistic_and_bandwidth_match_slow_loops():
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(9, 3)) + 0.5
    z = np.vstack([x, y])
    dists = [np.linalg.norm(z[i] - z[j]) for i in range(len(z)) for j in range(i + 1, len(z))]
    sigma = float(np.median(dists))
    assert median_bandwidth(torch.from_numpy(z)) == pytest.approx(sigma)

    def k(a, b):
        return math.exp(-np.sum((a - b) ** 2) / (2 * sigma ** 2))
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(k(a, b) for a in x for b in y) / (m * n)
    kern = torch.exp(-torch.cdist(torch.from_numpy(z), torch.from_numpy(z)).square()
                     / (2 * sigma ** 2))
    groups = torch.zeros(1, m + n, dtype=torch.bool)
    groups[0, :m] = True
    assert float(mmd2_unbiased(kern, groups)[0]) == pytest.approx(sxx + syy - 2 * sxy, abs=1e-12)
    assert mmd_test(x, y, permutations=50).mmd2 == pytest.approx(sxx + syy - 2 * sxy, abs=1e-12)


def test_mmd_false_alarms_and_power():
    rng = np.random.default_rng(10)
    reps, alarms, ps = 200, 0, []
    for r in range(reps):
        res = mmd_test(rng.normal(size=(40, 5)), rng.normal(size=(40, 5)), permutations=199,
                       seed=r)
        alarms += res.shifted
        ps.append(res.p_value)
    assert alarms / reps <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)
    assert 0.4 <= float(np.mean(ps)) <= 0.6                # uniform under the null: mean ½
    shifted = [mmd_test(rng.normal(size=(40, 5)), rng.normal(size=(40, 5)) + [1, 0, 0, 0, 0],
                        permutations=199, seed=r).shifted for r in range(50)]
    assert np.mean(shifted) >= 0.9


def test_output_distance_is_the_mean_wasserstein_distance():
    rng = np.random.default_rng(11)
    a, b = rng.dirichlet(np.ones(4), size=512), rng.dirichlet(np.ones(4) * 0.5, size=512)
    want = np.mean([wasserstein_distance(a[:, k], b[:, k]) for k in range(4)])
    assert output_distance(output_quantiles(a), output_quantiles(b)) == pytest.approx(want, abs=1e-12)
    b2 = rng.dirichlet(np.ones(4) * 0.5, size=3000)         # unequal sizes: within the grid
    want = np.mean([wasserstein_distance(a[:, k], b2[:, k]) for k in range(4)])
    assert abs(output_distance(output_quantiles(a), output_quantiles(b2)) - want) < 2 / 512


def _cell(i: int, stressor: str, severity: float) -> Cell:
    return Cell(id=i, model="m", dataset="synthetic:test", stressor=stressor,
                severity=severity, seed=0, status="done", n_images=1000, images_per_s=None,
                error=None)


def test_a_batch_drawn_like_a_cell_finds_that_cell_first():
    rng = np.random.default_rng(12)
    concentrations = {("clean", 0.0): 0.2, ("fog", 3.0): 1.0, ("blur", 5.0): 5.0}
    cells = []
    for i, ((name, sev), conc) in enumerate(concentrations.items()):
        p = rng.dirichlet(np.ones(C) * conc, size=2000)
        cells.append(CellOutputs(cell=_cell(i, name, sev), family="x",
                                 quantiles=output_quantiles(p), accuracy=0.9 - 0.2 * i,
                                 confidence=0.5, n_images=2000))
    batch = rng.dirichlet(np.ones(C) * 1.0, size=500)
    near = nearest_cells(batch, cells, k=2)
    assert near[0].stressor == "fog" and len(near) == 2
    assert near[0].distance < near[1].distance
    assert near[0].describe() == "looks like fog at 3 (stored accuracy 70.0 %)"


def _toy_model(n_classes: int = C) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(),
                         nn.Linear(16, n_classes))


class _Data:
    def __init__(self, images, labels):
        self.images, self.labels = images, labels


def test_accuracy_end_to_end_on_a_toy_model(tmp_path):
    g = torch.Generator().manual_seed(0)
    model = _toy_model()
    model.train()
    src = (torch.rand(400, 8, 8, 3, generator=g) * 255).to(torch.uint8)
    tgt = torch.rand(300, 3, 8, 8, generator=g)
    with torch.no_grad():
        ys = model(src.permute(0, 3, 1, 2).float() / 255).argmax(1)   # the model is right
    r = accuracy(model, tgt, _Data(src, ys), labels=torch.zeros(300, dtype=torch.int64),
                 n_boot=100)
    assert model.training                          # its mode is left as it was
    assert [e.name for e in r.estimates] == estimator_names()
    assert r.reference["accuracy"] == 1.0
    assert r.mmd is not None and r.mmd.n_target == 300
    assert r.true_accuracy is not None and 0 <= r.true_accuracy <= 1
    assert r.predictions.shape == (300,) and r.confidence.shape == (300,)
    d = r.as_dict()
    assert d["estimates"][0]["name"] == "AC" and "sentence" in d
    # A reference of logits only: no MMD, and a note saying so.
    with torch.no_grad():
        logits = model(src.permute(0, 3, 1, 2).float() / 255)
    r2 = accuracy(model, tgt, (logits, ys), n_boot=50)
    assert r2.mmd is None and "MMD test skipped" in r2.notes[0]


@pytest.mark.parametrize("bad, msg", [
    (lambda: fit_reference(torch.zeros(5, 1), torch.zeros(5)), "at least 2 classes"),
    (lambda: fit_reference(torch.zeros(5, 3), torch.full((5,), 3)), "labels must lie"),
    (lambda: fit_reference(torch.full((2, 3), math.nan), torch.zeros(2)), "NaN"),
    (lambda: estimate_accuracy(fit_reference(torch.randn(20, 3), torch.zeros(20), temperature=1.0),
                               torch.randn(5, 4)), "4 classes where the reference has 3"),
    (lambda: estimate_accuracy(fit_reference(torch.randn(20, 3), torch.zeros(20), temperature=1.0),
                               torch.randn(5, 3), methods=("XYZ",)), "unknown estimator"),
    (lambda: ks_test(torch.rand(5, 3), torch.rand(5, 3), alpha=2.0), "alpha"),
    (lambda: accuracy(_toy_model(), torch.rand(4, 8, 8), (torch.randn(9, C), torch.zeros(9))),
     "4 dimensions"),
    (lambda: accuracy(_toy_model(), torch.rand(4, 3, 8, 8) * 2, (torch.randn(9, C), torch.zeros(9))),
     "[0, 1]"),
    (lambda: accuracy(_toy_model(), torch.rand(4, 3, 8, 8), "val"), "reference"),
])
def test_bad_input_is_one_clear_error(bad, msg):
    with pytest.raises(EstimateError, match=None) as info:
        bad()
    assert isinstance(info.value, FailmodesError) and msg in str(info.value)
    assert "\n" not in str(info.value)


def test_stored_cells_from_a_store(tmp_path):
    from failmodes.store import CellKey, ResultsStore, RunFolder, per_image_rows
    store = ResultsStore(RunFolder(tmp_path).store)
    store.register_model("m", spec="x", arch="x", weights_hash="h",
                         class_names=[str(i) for i in range(C)])
    rng = np.random.default_rng(13)
    for sev, conc in ((1.0, 0.2), (5.0, 3.0)):
        logits = torch.from_numpy(np.log(rng.dirichlet(np.ones(C) * conc, size=300))).float()
        labels = torch.from_numpy(rng.integers(0, C, 300))
        rows = per_image_rows(logits, labels, torch.arange(300))
        store.write_cell(CellKey("m", "synthetic:test", "fog", sev), rows)
    store.close()
    cells = stored_cell_outputs(tmp_path, "m")
    assert [c.cell.severity for c in cells] == [1.0, 5.0]
    batch = torch.from_numpy(rng.dirichlet(np.ones(C) * 3.0, size=200))
    assert nearest_cells(batch, cells, k=1)[0].severity == 5.0
    with pytest.raises(EstimateError, match="no model 'zz'"):
        stored_cell_outputs(tmp_path, "zz")
