"""Delayed onset vs threshold collapse (issue 31, leftover 1).

A curve that is unaffected at the mildest severity and then falls steadily (the seed study's
Gaussian noise) is not a collapse: its fall after the knee is no steeper than the curve's
average fall, and it is seen at several severities. Known answers decided before the rule:
that shape reads ``delayed-onset``; fog (20 points lost after a late knee) and contrast stay
``threshold-collapse``; so does contrast sampled at {0, 1, 3, 5} (two levels after its knee
cannot show a steady fall).
"""
import numpy as np
import pytest

from failmodes.analysis.curves.regimes import REGIMES, classify_many, classify_regime

INTEGER = np.arange(6.0)
ONSET = np.array([0.90, 0.89, 0.80, 0.70, 0.60, 0.50])           # flat step, then 10/unit
# A straight fall from severity 1 to the seed page's Gaussian-noise severity-5 accuracy.
GAUSS_LIKE = np.array([86.95, 86.5, 79.625, 72.75, 65.875, 59.0]) / 100
FOG = np.array([86.95, 86.40, 83.65, 78.70, 72.30, 51.95]) / 100        # docs/seed-study.md
CONTRAST = np.array([86.95, 86.05, 77.55, 69.25, 52.70, 24.95]) / 100   # docs/seed-study.md
LATE = 0.90 - 0.22 * np.maximum(0.0, INTEGER - 3)                      # flat to 3, then 22/unit


def test_the_label_exists():
    assert "delayed-onset" in REGIMES


@pytest.mark.parametrize("y", [ONSET, GAUSS_LIKE], ids=["brief", "gaussian-noise-like"])
def test_flat_first_step_then_a_steady_fall_is_delayed_onset(y):
    r = classify_regime(INTEGER, y, n_images=2000)
    assert r.label == "delayed-onset", r


def test_real_collapses_stay_collapses():
    fog = classify_regime(INTEGER, FOG, n_images=2000)
    assert fog.label == "threshold-collapse", fog
    assert classify_regime(INTEGER, CONTRAST, n_images=2000).label == "threshold-collapse"
    assert classify_regime(INTEGER, LATE, n_images=2000).label == "threshold-collapse"
    # Contrast at {0, 1, 3, 5}: two levels after the knee cannot show a steady fall.
    r = classify_regime([0, 1, 3, 5], [0.9, 0.9, 0.5, 0.1], n_images=10000)
    assert r.label == "threshold-collapse" and r.shape == "hinge"


def _replicates(p, n, reps, seed):
    return np.random.default_rng(seed).binomial(n, np.broadcast_to(p, (reps, len(p)))) / n


def test_calibration_by_simulation_at_2000_images():
    # 1000 test sets of N = 2000 per severity (independent binomial noise per level).
    # Asserted: a true delayed onset reads delayed-onset in ≥ 90 %; a true collapse reads
    # delayed-onset in ≤ 5 % (each of fog, contrast and a flat-to-3 collapse).
    onset = classify_many(INTEGER, _replicates(ONSET, 2000, 1000, 1), n_images=2000)
    assert np.mean(onset == "delayed-onset") >= 0.90, np.unique(onset, return_counts=True)
    for name, truth in (("fog", FOG), ("contrast", CONTRAST), ("late", LATE)):
        lab = classify_many(INTEGER, _replicates(truth, 2000, 1000, 2), n_images=2000)
        assert np.mean(lab == "delayed-onset") <= 0.05, (name, np.unique(lab, return_counts=True))


def _nested(p, n, seed):
    u = np.random.default_rng(seed).random(n)
    return (u[:, None] < np.asarray(p)[None, :]).astype(np.float64)


def test_shares_and_claims_know_the_new_label():
    from failmodes.analysis.claims import parse_claims, regime_verdict
    from failmodes.analysis.curves.regimes import label_shares
    shares = label_shares(INTEGER, _nested(ONSET, 2000, 0), n_resamples=200, seed=0)
    assert shares.get("delayed-onset", 0.0) >= 0.95, shares
    assert regime_verdict(shares, "delayed-onset") == "supported"
    assert regime_verdict(shares, "threshold-collapse") == "contradicted"
    fog = label_shares(INTEGER, _nested(FOG, 2000, 0), n_resamples=200, seed=0)
    assert regime_verdict(fog, "threshold-collapse") == "supported", fog
    assert regime_verdict(fog, "delayed-onset") == "contradicted", fog
    (c,) = parse_claims([{"regime": "gaussian_noise", "model": "m", "is": "delayed-onset"}],
                        models={"m"})
    assert c.params["is"] == "delayed-onset"


def test_every_label_is_in_the_legends_and_docs():
    from pathlib import Path

    from failmodes.analysis.curves import INTRO
    from failmodes.analysis.curves._figures import REGIME_COLORS
    root = Path(__file__).resolve().parents[1]
    template = (root / "failmodes/report/templates/first_screen.html.j2").read_text()
    readme = (root / "README.md").read_text()
    for lab in REGIMES:
        assert lab in REGIME_COLORS, lab
        assert lab in INTRO, lab
        assert lab in readme, lab
        assert lab in template or "regime_labels" in template, lab
