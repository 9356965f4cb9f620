"""Paired model comparisons: exact tests with few discordant images, Holm across corruptions,
and compare.py's per-model clean deltas (known answers stated before running)."""
from __future__ import annotations

import numpy as np
import pytest

from failmodes.analysis.paired import holm, mcnemar_exact, sign_flip_p
from failmodes.report.comparison import cell_deltas, clean_deltas, corruption_deltas
from failmodes.store import CellKey, ResultsStore

N = 100


def _rows(correct: np.ndarray) -> dict:
    labels = np.zeros(N, dtype=np.int64)
    pred = np.where(correct, 0, 1)
    return {"idx": np.arange(N), "label": labels, "pred": pred, "conf": np.full(N, 0.8),
            "p_true": np.where(correct, 0.8, 0.2), "entropy": np.full(N, 0.5),
            "margin": np.full(N, 0.6)}


def _store(path, models: dict[str, dict[tuple, np.ndarray]]) -> None:
    with ResultsStore(path) as st:
        for name, cells in models.items():
            st.register_model(name, spec="toy", arch="toy", weights_hash=name,
                              class_names=["a", "b"])
            for (stressor, sev), correct in cells.items():
                st.write_cell(CellKey(name, "toy:test", stressor, float(sev)), _rows(correct))


def _gain(k: int) -> tuple[np.ndarray, np.ndarray]:
    """A right on the first 50 images; B right on those and on k more: k vs 0 discordant."""
    a = np.arange(N) < 50
    return a, np.arange(N) < 50 + k


def test_exact_mcnemar_and_sign_flip_known_values():
    assert mcnemar_exact(5, 0) == pytest.approx(0.0625)            # 2 / 2^5
    assert mcnemar_exact(0, 0) == 1.0
    p, how = sign_flip_p([1.0] * 5 + [0.0] * 95)
    assert how == "exact" and p == pytest.approx(0.0625)           # = McNemar exact
    # 30 vs 10 discordant: exact McNemar p = 2 P(Bin(40, .5) <= 10) = 0.002221
    assert mcnemar_exact(30, 10) == pytest.approx(0.002221, abs=2e-6)
    p, how = sign_flip_p([1.0] * 30 + [-1.0] * 10)
    assert how == "exact-binomial" and p == pytest.approx(0.002221, abs=2e-6)
    # Mixed sizes between EXACT_MAX and MONTE_CARLO_MAX: seeded Monte Carlo.
    assert sign_flip_p([1.0] * 30 + [-0.5] * 10)[1] == "monte-carlo"
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_five_vs_zero_discordant_is_not_flagged(tmp_path):
    a, b = _gain(5)
    _store(tmp_path / "s.sqlite", {"A": {("clean", 0): a, ("fog", 1): a},
                                   "B": {("clean", 0): b, ("fog", 1): b}})
    (d,) = corruption_deltas(tmp_path / "s.sqlite", "A", tmp_path / "s.sqlite", "B")
    # The Wald interval would flag this (+5 ± 4.3 points); the exact test does not.
    assert d["delta"] == pytest.approx(5.0) and d["ci95"] < 5.0
    assert d["p"] == pytest.approx(0.0625) and d["test"] == "exact"
    assert d["n_discordant"] == 5 and d["significant"] is False
    cells = {c["stressor"]: c for c in cell_deltas(tmp_path / "s.sqlite", "A",
                                                   tmp_path / "s.sqlite", "B")}
    assert (cells["clean"]["b_only"], cells["clean"]["a_only"]) == (5, 0)
    assert cells["clean"]["p"] == pytest.approx(0.0625)


def test_holm_across_corruptions(tmp_path):
    # 9, 6 and 6 vs 0 discordant: raw p = 0.0039, 0.031, 0.031, all below 0.05; after Holm
    # 0.0117, 0.0625, 0.0625, so only the first stays flagged.
    cells_a, cells_b = {}, {}
    for name, k in (("fog", 9), ("frost", 6), ("snow", 6)):
        cells_a[(name, 1)], cells_b[(name, 1)] = _gain(k)
    _store(tmp_path / "s.sqlite", {"A": cells_a, "B": cells_b})
    d = {r["stressor"]: r for r in corruption_deltas(tmp_path / "s.sqlite", "A",
                                                     tmp_path / "s.sqlite", "B")}
    assert d["fog"]["p"] == pytest.approx(2 / 2 ** 9) and d["frost"]["p"] == pytest.approx(2 / 64)
    assert d["fog"]["p_holm"] == pytest.approx(3 * 2 / 2 ** 9)
    assert d["frost"]["p_holm"] == pytest.approx(0.0625) == d["snow"]["p_holm"]
    assert [d[s]["significant"] for s in ("fog", "frost", "snow")] == [True, False, False]


def test_images_count_once_per_corruption(tmp_path):
    # B gains the same 5 images at severities 1 and 2 and a fractional 2.5 (never counted):
    # n = 100 images, d = 1 on 5 of them, p = 0.0625 exactly as for one severity.
    a, b = _gain(5)
    worse = np.zeros(N, bool)
    _store(tmp_path / "s.sqlite", {"A": {("fog", 1): a, ("fog", 2): a, ("fog", 2.5): b},
                                   "B": {("fog", 1): b, ("fog", 2): b, ("fog", 2.5): worse}})
    (d,) = corruption_deltas(tmp_path / "s.sqlite", "A", tmp_path / "s.sqlite", "B")
    assert d["n"] == 100 and d["delta"] == pytest.approx(5.0) and d["p"] == pytest.approx(0.0625)


def test_clean_deltas_stay_with_their_model(tmp_path):
    # B's first model has no clean cell; the second gains 10 points clean. The old zip gave
    # the first model the second's delta.
    a, _ = _gain(0)
    _, b10 = _gain(10)
    _store(tmp_path / "a.sqlite", {"base": {("clean", 0): a, ("fog", 1): a}})
    _store(tmp_path / "b.sqlite", {"no-clean": {("fog", 1): a},
                                   "plus10": {("clean", 0): b10, ("fog", 1): a}})
    got = clean_deltas(tmp_path / "a.sqlite", "base", tmp_path / "b.sqlite",
                       ["no-clean", "plus10"])
    assert list(got) == ["plus10"] and got["plus10"]["delta"] == pytest.approx(10.0)


def test_compare_page_notes_the_right_model(tmp_path, monkeypatch):
    from failmodes.analysis import registry
    from failmodes.report import compare_runs
    monkeypatch.setattr(registry, "_REGISTRY", {})
    a, _ = _gain(0)
    _, b10 = _gain(10)
    _store(tmp_path / "A" / "results.sqlite", {"base": {("clean", 0): a, ("fog", 1): a}})
    _store(tmp_path / "B" / "results.sqlite", {"no-clean": {("fog", 1): a},
                                               "plus10": {("clean", 0): b10, ("fog", 1): a}})
    html = compare_runs(tmp_path / "A", tmp_path / "B", tmp_path / "cmp").read_text()
    assert "Clean accuracy of B:plus10 minus A:base: +10.0" in html
    assert "Clean accuracy of B:no-clean" not in html


# ------------------------------------------------- issue 31: the sign-flip test's large-k branch
@pytest.mark.parametrize("b, c", [(230, 172), (236, 179), (257, 193), (304, 236), (700, 610)])
def test_sign_flip_on_plus_minus_one_is_the_exact_binomial(b, c):
    # ±1 differences beyond MONTE_CARLO_MAX: the exact McNemar / binomial test (scipy).
    from scipy.stats import binomtest
    d = np.r_[np.ones(b), -np.ones(c), np.zeros(50)]
    p, method = sign_flip_p(d)
    assert p == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9)
    assert method == "exact-binomial"


def _exact_sign_flip(units: np.ndarray) -> float:
    """Exact two-sided sign-flip p for positive-integer magnitudes with observed signed sum,
    by convolution of the ±u distribution (units: signed integers)."""
    mags = np.abs(units).astype(int)
    total = int(mags.sum())
    dist = np.zeros(2 * total + 1)
    dist[total] = 1.0
    for m in mags:
        dist = 0.5 * (np.roll(dist, m) + np.roll(dist, -m))
    t = abs(int(units.sum()))
    s = np.arange(-total, total + 1)
    return float(dist[np.abs(s) >= t].sum())


@pytest.mark.parametrize("seed", range(3))
def test_sign_flip_on_mixed_magnitudes_has_a_continuity_correction(seed):
    # Per-image means over 5 severities: multiples of 0.2. 450 non-zero values, exact p by
    # convolution; the normal limit with half a lattice step of correction within 3 %
    # (without it, ~10 % too small).
    rng = np.random.default_rng(seed)
    units = rng.choice([1, 2, 3], 450) * rng.choice([1, -1], 450, p=[0.55, 0.45])
    exact = _exact_sign_flip(units)
    p, method = sign_flip_p(np.r_[units / 5, np.zeros(30)])
    assert method == "normal"
    assert 0.001 < exact < 0.5
    assert p == pytest.approx(exact, rel=0.03), (p, exact)
