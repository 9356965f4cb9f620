"""Regime classifier: synthetic curves of each known shape, with sampling noise."""
import numpy as np
import pytest

from failmodes.analysis.regimes import GRACEFUL_DROP_POINTS, REGIMES, classify_regime
from synthetic_store import curve

INTEGER = np.arange(6.0)           # clean + CIFAR-10-C levels 1..5
FINE = np.linspace(0.0, 5.0, 21)   # a fine continuous grid, step 0.25


def noisy(shape, grid, n_images, seed):
    p = np.array(list(curve(shape, grid).values()))
    return np.random.default_rng(seed).binomial(n_images, p) / n_images


@pytest.mark.parametrize("grid", [INTEGER, FINE], ids=["integer", "fine"])
@pytest.mark.parametrize("shape", REGIMES)
@pytest.mark.parametrize("seed", range(4))
def test_noisy_shapes_get_their_label(shape, grid, seed):
    y = noisy(shape, grid, 2000, seed)
    r = classify_regime(grid, y, n_images=2000)
    assert r.label == shape, r


@pytest.mark.parametrize("seed", range(3))
def test_threshold_breakpoint_and_slopes(seed):
    r = classify_regime(FINE, noisy("threshold-collapse", FINE, 5000, seed), n_images=5000)
    assert r.shape == "piecewise"
    assert abs(r.breakpoint - 3.0) <= 0.3
    assert abs(r.slope_before) < 2.0          # flat: under 2 points per severity unit
    assert abs(r.slope_after - 22.0) < 3.0    # steep: 22 points per severity unit
    assert abs(r.total_drop - 44.0) < 4.0
    assert r.bic_margin > 0 and r.label_margin > 6 and r.confidence in ("strong", "very strong")


def test_bic_prefers_flat_on_flat_data():
    picked = [classify_regime(INTEGER, np.random.default_rng(s).binomial(2000, 0.9, 6) / 2000,
                              n_images=2000).shape for s in range(20)]
    assert picked.count("flat") >= 16     # the simplest shape wins unless noise mimics a trend
    exact = classify_regime(INTEGER, np.full(6, 0.9), n_images=2000)
    assert exact.shape == "flat" and exact.label == "graceful"
    assert exact.bic_margin > 0


def test_sampling_floor_stops_overfitting():
    # A linear curve with tiny wiggles (far below binomial noise at N=500) stays linear.
    x = FINE
    y = 0.9 - 0.08 * x + 0.002 * np.sin(7 * x)
    assert classify_regime(x, y, n_images=500).shape == "linear"


def test_small_total_drop_is_graceful_whatever_the_shape():
    # A clean threshold shape, but only 4 points lost in total.
    y = np.where(FINE < 3, 0.9, 0.9 - 0.02 * (FINE - 3))
    r = classify_regime(FINE, y, n_images=100000)
    assert r.fitted_drop < GRACEFUL_DROP_POINTS and r.label == "graceful"


def test_order_and_repeats_do_not_matter():
    y = np.array(list(curve("linear", INTEGER).values()))
    perm = np.array([3, 0, 5, 1, 4, 2])
    a = classify_regime(INTEGER, y, 1000)
    b = classify_regime(INTEGER[perm], y[perm], 1000)
    assert a.label == b.label and a.shape == b.shape
    c = classify_regime(np.repeat(INTEGER, 2), np.repeat(y, 2), 1000)  # two seeds per level
    assert c.label == "linear"


def test_bad_input():
    with pytest.raises(ValueError, match="3 distinct"):
        classify_regime([0, 1], [0.9, 0.8])
    with pytest.raises(ValueError, match="equal length"):
        classify_regime([0, 1, 2], [0.9, 0.8])
