"""ECE beside its uncertainty (statistics review 2026-12-06, 2(e)): a bootstrap interval and
the noise floor of a perfectly calibrated model with the same confidences at the same n.
Known answers: predictions calibrated by construction (correct ~ Bernoulli(conf)) sit inside
the floor's band at the floor's own rate; a model 10 points overconfident sits far above."""
import numpy as np
import pytest
import torch

from failmodes.analysis.calibration._core import ece_interval, ece_mce, ece_noise_floor

N, BINS = 2000, 15


def _conf(rng, n=N):
    # Top-label confidences of a 10-class model: in [0.1, 1], mostly high (~80 % accuracy).
    return np.clip(rng.beta(5.0, 1.3, n), 0.1, 1.0)


def test_floor_matches_a_slow_reference_on_the_same_draws():
    rng = np.random.default_rng(0)
    conf = _conf(rng)
    floor = ece_noise_floor(torch.from_numpy(conf), BINS, draws=50, seed=3)
    # The same Bernoulli(conf) draws, one ECE at a time through the table's own ECE.
    g = np.random.default_rng(3)
    slow = [ece_mce(torch.from_numpy(conf), torch.from_numpy(g.random(N) < conf), BINS)[0]
            for _ in range(50)]
    assert floor["mean"] == pytest.approx(np.mean(slow), abs=1e-12)
    assert floor["q95"] == pytest.approx(np.quantile(slow, 0.95), abs=1e-12)
    # Review: ≈ 0.02 at n = 2000, 15 bins.
    assert 0.012 < floor["mean"] < 0.03


def test_calibrated_by_construction_sits_inside_the_floor_band():
    # 200 data sets calibrated by construction: the share above the floor's 95th percentile
    # is ≈ 5 % (asserted ≤ 5 % + 3 binomial s.d. = 9.6 %); 10 points overconfident: always
    # above it, and its interval holds the true gap of 0.10 (bias of ECE is small there).
    rng = np.random.default_rng(1)
    above, over_above, covers = 0, 0, 0
    reps = 200
    for _ in range(reps):
        conf = _conf(rng)
        ct = torch.from_numpy(conf)
        floor = ece_noise_floor(ct, BINS, draws=200, seed=0)
        ece = ece_mce(ct, torch.from_numpy(rng.random(N) < conf), BINS)[0]
        above += ece > floor["q95"]
        wrong = torch.from_numpy(rng.random(N) < conf - 0.10)
        e_over = ece_mce(ct, wrong, BINS)[0]
        over_above += e_over > floor["q95"]
        lo, hi = ece_interval(ct, wrong, BINS, n_boot=200, seed=0)
        covers += lo <= 0.10 <= hi
    assert above / reps <= 0.05 + 0.046, above / reps
    assert over_above == reps
    assert covers / reps >= 0.85, covers / reps


def test_interval_brackets_the_estimate_and_is_seeded():
    rng = np.random.default_rng(2)
    conf = torch.from_numpy(_conf(rng))
    correct = torch.from_numpy(rng.random(N) < conf.numpy())
    ece = ece_mce(conf, correct, BINS)[0]
    lo, hi = ece_interval(conf, correct, BINS)
    assert lo < ece < hi and hi - lo < 0.05
    assert ece_interval(conf, correct, BINS) == (lo, hi)
